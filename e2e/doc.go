// Package e2e holds the end-to-end tests: the engine (pipeline.Apply,
// pipeline.PlanRun) with every stage and format plugin (stages/all)
// against the Qdrant emulator, Hugging Face-like and lying HTTP servers,
// generated data and ../shared/fixtures. It has no code of its own.
package e2e

package qdrantemu

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Aliases follow Qdrant v1.17 (lib/storage/src/content_manager/toc/
// collection_meta_ops.rs, alias_mapping.rs): the actions of one request
// run in order under the collections lock, so readers never see a partial
// switch, with no rollback (actions before a failing one stay applied);
// create_alias overwrites an alias of that name; delete_alias of an
// unknown alias succeeds; rename_alias of an unknown one is NotFound
// "Alias {old} does not exists!"; deleting a collection removes its
// aliases; aliases resolve on point reads and writes and collection info.

// aliasAction is one of create_alias, delete_alias, rename_alias.
type aliasAction struct {
	Create *struct {
		Collection string `json:"collection_name"`
		Alias      string `json:"alias_name"`
	} `json:"create_alias,omitempty"`
	Delete *struct {
		Alias string `json:"alias_name"`
	} `json:"delete_alias,omitempty"`
	Rename *struct {
		Old string `json:"old_alias_name"`
		New string `json:"new_alias_name"`
	} `json:"rename_alias,omitempty"`
}

// applyAliases runs the actions in order under the collections lock.
func (s *Server) applyAliases(actions []aliasAction) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aliases == nil {
		s.aliases = map[string]string{}
	}
	for _, a := range actions {
		switch {
		case a.Create != nil:
			if _, ok := s.collections[a.Create.Collection]; !ok {
				return status.Errorf(codes.NotFound, "Not found: Collection `%s` doesn't exist!", a.Create.Collection)
			}
			if _, ok := s.collections[a.Create.Alias]; ok {
				return status.Errorf(codes.AlreadyExists, "Wrong input: Collection `%s` already exists!", a.Create.Alias)
			}
			s.aliases[a.Create.Alias] = a.Create.Collection
		case a.Delete != nil:
			delete(s.aliases, a.Delete.Alias)
		case a.Rename != nil:
			c, ok := s.aliases[a.Rename.Old]
			if !ok {
				return status.Errorf(codes.NotFound, "Not found: Alias %s does not exists!", a.Rename.Old)
			}
			delete(s.aliases, a.Rename.Old)
			s.aliases[a.Rename.New] = c
		default:
			return status.Error(codes.InvalidArgument, "Wrong input: unknown alias action")
		}
	}
	return nil
}

// resolveLocked maps an alias to its collection (s.mu held).
func (s *Server) resolveLocked(name string) string {
	if _, ok := s.collections[name]; ok {
		return name
	}
	if c, ok := s.aliases[name]; ok {
		return c
	}
	return name
}

// deleteCollection drops a collection and its aliases; false when absent.
func (s *Server) deleteCollection(start time.Time, name string) bool {
	s.mu.Lock()
	_, ok := s.collections[name]
	delete(s.collections, name)
	if ok {
		s.dropAliasesLocked(name)
	}
	s.mu.Unlock()
	if ok {
		s.record(Op{At: start, Kind: "delete", Collection: name})
	}
	return ok
}

func (s *Server) restDeleteCollection(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ok(w, start, s.deleteCollection(start, r.PathValue("c")))
}

// dropAliasesLocked removes the aliases of a deleted collection.
func (s *Server) dropAliasesLocked(collection string) {
	for a, c := range s.aliases {
		if c == collection {
			delete(s.aliases, a)
		}
	}
}

type aliasPair struct {
	Alias      string `json:"alias_name"`
	Collection string `json:"collection_name"`
}

// aliasList lists aliases (of one collection when c is set), sorted.
func (s *Server) aliasList(c string) []aliasPair {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []aliasPair
	for a, col := range s.aliases {
		if c == "" || col == c {
			out = append(out, aliasPair{a, col})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alias < out[j].Alias })
	return out
}

func (s *Server) restUpdateAliases(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var body struct {
		Actions []aliasAction `json:"actions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		fail(w, start, badRequest("Json deserialize error: "+err.Error()))
		return
	}
	if err := s.applyAliases(body.Actions); err != nil {
		fail(w, start, err)
		return
	}
	s.record(Op{At: start, Kind: "aliases"})
	ok(w, start, true)
}

func (s *Server) restListAliases(w http.ResponseWriter, r *http.Request) {
	ok(w, time.Now(), map[string]any{"aliases": s.aliasList("")})
}

func (s *Server) restCollectionAliases(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := r.PathValue("c")
	if _, err := s.get(c); err != nil {
		fail(w, start, err)
		return
	}
	ok(w, start, map[string]any{"aliases": s.aliasList(c)})
}

func (c *collectionsService) UpdateAliases(ctx context.Context, r *qdrant.ChangeAliases) (*qdrant.CollectionOperationResponse, error) {
	start := time.Now()
	var acts []aliasAction
	for _, op := range r.GetActions() {
		var a aliasAction
		switch {
		case op.GetCreateAlias() != nil:
			a.Create = &struct {
				Collection string `json:"collection_name"`
				Alias      string `json:"alias_name"`
			}{op.GetCreateAlias().GetCollectionName(), op.GetCreateAlias().GetAliasName()}
		case op.GetDeleteAlias() != nil:
			a.Delete = &struct {
				Alias string `json:"alias_name"`
			}{op.GetDeleteAlias().GetAliasName()}
		case op.GetRenameAlias() != nil:
			a.Rename = &struct {
				Old string `json:"old_alias_name"`
				New string `json:"new_alias_name"`
			}{op.GetRenameAlias().GetOldAliasName(), op.GetRenameAlias().GetNewAliasName()}
		default:
			return nil, fmt.Errorf("empty alias action")
		}
		acts = append(acts, a)
	}
	if err := c.s.applyAliases(acts); err != nil {
		return nil, err
	}
	c.s.record(Op{At: start, Kind: "aliases"})
	return &qdrant.CollectionOperationResponse{Result: true, Time: since(start)}, nil
}

func (c *collectionsService) ListAliases(ctx context.Context, r *qdrant.ListAliasesRequest) (*qdrant.ListAliasesResponse, error) {
	start := time.Now()
	out := &qdrant.ListAliasesResponse{}
	for _, p := range c.s.aliasList("") {
		out.Aliases = append(out.Aliases, &qdrant.AliasDescription{AliasName: p.Alias, CollectionName: p.Collection})
	}
	out.Time = since(start)
	return out, nil
}

func (c *collectionsService) ListCollectionAliases(ctx context.Context, r *qdrant.ListCollectionAliasesRequest) (*qdrant.ListAliasesResponse, error) {
	start := time.Now()
	if _, err := c.s.get(r.GetCollectionName()); err != nil {
		return nil, err
	}
	out := &qdrant.ListAliasesResponse{}
	for _, p := range c.s.aliasList(r.GetCollectionName()) {
		out.Aliases = append(out.Aliases, &qdrant.AliasDescription{AliasName: p.Alias, CollectionName: p.Collection})
	}
	out.Time = since(start)
	return out, nil
}

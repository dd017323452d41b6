package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/scoville/scoville/models"
)

func init() {
	// A refused document is a request error, like a parse failure: nothing ran.
	errcode.RegisterErrorType(models.CodeDocumentNotAllowed, errcode.KindProtocol)
}

// PersistedDocuments is a manifest of the documents the storefront may run (the
// client kit's clients/persisted-documents.json): the lower-case hex sha256 of
// each document's exact text mapped to the text. It is read-only once loaded.
type PersistedDocuments struct {
	byHash map[string]string
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// LoadPersistedDocuments reads a manifest: one JSON object of hash -> document.
// It fails unless every key is the sha256 of its document's bytes, so a manifest
// cannot make one hash stand for another text, and unless it holds at least one
// document.
func LoadPersistedDocuments(path string) (*PersistedDocuments, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("persisted documents: %w", err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("persisted documents %s: not a JSON object of hash to document: %w", path, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("persisted documents %s: no documents", path)
	}
	for hash, doc := range m {
		if !sha256Hex.MatchString(hash) || documentHash(doc) != hash {
			return nil, fmt.Errorf("persisted documents %s: key %.16s... is not the sha256 of its document", path, hash)
		}
	}
	return &PersistedDocuments{byHash: m}, nil
}

// Len is the number of documents.
func (p *PersistedDocuments) Len() int { return len(p.byHash) }

// Documents returns the documents' texts, sorted.
func (p *PersistedDocuments) Documents() []string {
	out := make([]string, 0, len(p.byHash))
	for _, d := range p.byHash {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

func documentHash(doc string) string {
	h := sha256.Sum256([]byte(doc))
	return hex.EncodeToString(h[:])
}

// persistedFirst is the persisted-query cache in persisted-documents mode: a hash
// of the manifest finds its document there, anything else goes to the automatic
// persisted queries' cache as before (whose documents persistedOnly then refuses
// to callers who are not staff).
type persistedFirst struct {
	docs *PersistedDocuments
	graphql.Cache[string]
}

func (c persistedFirst) Get(ctx context.Context, hash string) (string, bool) {
	if doc, ok := c.docs.byHash[hash]; ok {
		return doc, true
	}
	return c.Cache.Get(ctx, hash)
}

// persistedOnly runs, in persisted-documents mode, only the manifest's documents
// for callers who are not SUPPORT or ADMIN (anonymous and CUSTOMER): the document,
// however it came (whole, or as a hash the persisted-query lookup before it
// resolved), must be byte for byte one of the manifest's. Staff, in the
// Playground, may send any document. It runs before parsing, so a refused
// document costs a hash.
type persistedOnly struct{ docs *PersistedDocuments }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = persistedOnly{}

func (persistedOnly) ExtensionName() string { return "PersistedDocumentsOnly" }

func (persistedOnly) Validate(graphql.ExecutableSchema) error { return nil }

func (p persistedOnly) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	if isStaff(ctx) {
		return nil
	}
	if _, ok := p.docs.byHash[documentHash(params.Query)]; ok {
		return nil
	}
	return limitError(models.CodeDocumentNotAllowed,
		"this server runs only the client kit's persisted documents: send one of them, whole or by its sha256 in extensions.persistedQuery")
}

package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/scoville/scoville/models"
)

// Defaults of the cost limits (API-3); HandlerConfig overrides them.
const (
	DefaultMaxComplexity = 5000
	DefaultMaxDepth      = 15
	DefaultMaxAliases    = 30
	DefaultMaxFields     = 2000
	// DefaultParserTokenLimit is several times the largest legitimate document: the
	// storefront's operations and the Playground's introspection query have a few
	// hundred tokens (docs/incoming/h-parse.md). Parsing is linear, but it is paid in
	// full before any limit can look at the document.
	DefaultParserTokenLimit = 2000
	// DefaultMaxNodes bounds what validation visits in one document (see
	// HandlerConfig.MaxNodes).
	DefaultMaxNodes = 10000
	// DefaultValidationBudget bounds the field comparisons of one document's
	// validation (see HandlerConfig.ValidationBudget).
	DefaultValidationBudget = 5000
	// MaxBodyBytes bounds a GraphQL request body (the server refuses a larger one
	// with 413 before reading it): many times the largest legitimate request, small
	// enough that decoding the largest JSON costs little.
	MaxBodyBytes = 64 << 10
	// DefaultAPQCacheSize and DefaultAPQMaxQueryBytes bound the persisted-query
	// cache: at most size entries of at most that many bytes (16 MiB in all).
	DefaultAPQCacheSize     = 1000
	DefaultAPQMaxQueryBytes = 16 << 10
)

// HandlerConfig is what the GraphQL endpoint needs; NewHandler fills defaults.
type HandlerConfig struct {
	Resolvers    ResolverRoot
	StepUpMaxAge time.Duration
	// StepUpACR and StepUpAMR are the factors @stepUp fields need besides a recent
	// login (see StepUpFactors); empty means none.
	StepUpACR []string
	StepUpAMR []string
	Now       func() time.Time
	// Introspection opens introspection and "Did you mean" hints in errors to every
	// caller, as development does. Without it (production) only SUPPORT and ADMIN
	// principals have them; anyone else asking for __schema or __type is refused.
	Introspection bool
	// MaxComplexity bounds an operation's cost: objects cost 1, scalars 0, and a
	// field with a first argument costs first (as asked, though more than
	// paging.MaxFirst is served as MaxFirst) times its selection. Default
	// DefaultMaxComplexity.
	MaxComplexity int
	// MaxDepth bounds field nesting; default DefaultMaxDepth.
	MaxDepth int
	// MaxAliases bounds the aliases of one operation; default DefaultMaxAliases.
	MaxAliases int
	// MaxFields bounds the fields of one operation with fragments expanded;
	// default DefaultMaxFields.
	MaxFields int
	// ParserTokenLimit bounds the tokens of a query document, so a huge document is
	// refused while parsing; default DefaultParserTokenLimit.
	ParserTokenLimit int
	// MaxNodes bounds, before validation, the selections, directives and argument
	// values that validation will visit in the whole document (every operation and
	// fragment, fragments expanded where spread); default DefaultMaxNodes.
	MaxNodes int
	// ValidationBudget bounds the work of the field-merging validation rule (field
	// pairs compared and the like); a document needing more is refused with
	// models.CodeDocumentTooComplex. Default DefaultValidationBudget.
	ValidationBudget int
	// APQCacheSize is the number of automatic persisted queries kept;
	// default DefaultAPQCacheSize.
	APQCacheSize int
	Logger       *slog.Logger
	// Extensions are added after the built-in ones (metrics, limits).
	Extensions []graphql.HandlerExtension
	// OnForbidden, when set, is told of each field @hasRole refuses to an
	// authenticated caller, once per field and operation (see ForbiddenHook).
	OnForbidden ForbiddenHook
	// Live, when set, adds the WebSocket transport of live updates (LiveConfig).
	Live *LiveConfig

	// APQPerCaller is how many persisted queries one caller may hold that
	// nobody else has used (see apqCache); default DefaultAPQPerCaller.
	APQPerCaller int
	// APQCaller names the caller of a request for APQPerCaller; default the
	// principal, or the client address when anonymous.
	APQCaller func(context.Context) string

	// PersistedDocuments, when set, switches on persisted-documents mode: callers
	// who are not SUPPORT or ADMIN may run only its documents (sent whole, or by
	// their sha256 as a persisted query), and any other document is refused with
	// models.CodeDocumentNotAllowed. Nil: every document may run.
	PersistedDocuments *PersistedDocuments

	// countWork, when set, is given each validation's tally as it starts (tests).
	countWork func(*validationWork)
}

// NewHandler builds the /graphql endpoint explicitly (never gqlgen's default server).
// Transports: JSON POST, and GET for queries only (the GET transport refuses any
// other operation before it runs, so a mutation never runs over GET), with automatic
// persisted queries on both, and, with cfg.Live, WebSocket (graphql-transport-ws) for
// live updates, whose operations pass the same limits. A POST body must be one JSON
// object: batches (arrays) are refused. Every document passes, whether it came whole
// or as a persisted hash: the parser's token limit, then the depth, alias, field
// and node limits in one linear pass, then validation with the field-merging rule
// under a budget, then the introspection gate, the complexity limit and
// cfg.Extensions (the rate limit), all before any resolver runs. Errors go through this package's presenter, with
// "Did you mean" hints removed for callers who may not introspect. With
// cfg.PersistedDocuments, callers who are not staff run only the manifest's
// documents (persistedOnly, right after the persisted-query lookup). Request errors
// answer as GraphQL over HTTP asks (specAnswer).
func NewHandler(cfg HandlerConfig) *handler.Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.MaxComplexity = orDefault(cfg.MaxComplexity, DefaultMaxComplexity)
	cfg.MaxDepth = orDefault(cfg.MaxDepth, DefaultMaxDepth)
	cfg.MaxAliases = orDefault(cfg.MaxAliases, DefaultMaxAliases)
	cfg.MaxFields = orDefault(cfg.MaxFields, DefaultMaxFields)
	cfg.ParserTokenLimit = orDefault(cfg.ParserTokenLimit, DefaultParserTokenLimit)
	cfg.MaxNodes = orDefault(cfg.MaxNodes, DefaultMaxNodes)
	cfg.ValidationBudget = orDefault(cfg.ValidationBudget, DefaultValidationBudget)
	cfg.APQCacheSize = orDefault(cfg.APQCacheSize, DefaultAPQCacheSize)
	cfg.APQPerCaller = orDefault(cfg.APQPerCaller, DefaultAPQPerCaller)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	directiveOpts := []DirectiveOption{StepUpFactors(cfg.StepUpACR, cfg.StepUpAMR)}
	if cfg.OnForbidden != nil {
		directiveOpts = append(directiveOpts, OnForbidden(cfg.OnForbidden))
	}
	srv := handler.New(costSchema{ExecutableSchema: NewExecutableSchema(Config{
		Resolvers:  cfg.Resolvers,
		Directives: NewDirectives(cfg.StepUpMaxAge, cfg.Now, directiveOpts...),
	}), maxComplexity: cfg.MaxComplexity})
	if cfg.Live != nil {
		srv.AddTransport(newLiveTransport(*cfg.Live, cfg.Logger)) // first: it takes every upgrade request
	}
	srv.AddTransport(transport.Options{})
	srv.AddTransport(specGET{})
	srv.AddTransport(singleJSONPost{})
	docs := lru.New[*ast.QueryDocument](1000)
	srv.SetQueryCache(docs)
	srv.SetParserTokenLimit(cfg.ParserTokenLimit)
	srv.SetValidationRulesFn(validationRules(cfg.ValidationBudget, cfg.countWork))
	// Where the hints are hidden from most callers anyway, none are computed: each
	// unknown field would cost a string distance to every field of its type.
	srv.SetDisableSuggestion(!cfg.Introspection)
	// The persisted-query lookup comes first, so the shape limit measures the
	// document a hash stands for.
	var queries graphql.Cache[string] = newAPQCache(cfg.APQCacheSize, cfg.APQPerCaller, DefaultAPQMaxQueryBytes, cfg.APQCaller)
	if cfg.PersistedDocuments != nil {
		queries = persistedFirst{docs: cfg.PersistedDocuments, Cache: queries}
	}
	srv.Use(codedAPQ{extension.AutomaticPersistedQuery{Cache: queries}})
	if cfg.PersistedDocuments != nil {
		srv.Use(persistedOnly{docs: cfg.PersistedDocuments})
	}
	srv.Use(shapeLimit{
		maxDepth: cfg.MaxDepth, maxAliases: cfg.MaxAliases, maxFields: cfg.MaxFields, maxNodes: cfg.MaxNodes,
		tokenLimit: cfg.ParserTokenLimit, cache: docs,
	})
	srv.Use(introspectionGate{open: cfg.Introspection})
	srv.Use(socketOnly{})
	srv.Use(newPricedOnce(cfg.MaxComplexity, complexity.WithFixedScalarValue(0)))
	if cfg.OnForbidden != nil {
		srv.Use(RefusalsOnce{})
	}
	for _, e := range cfg.Extensions {
		srv.Use(e)
	}
	srv.SetErrorPresenter(withErrorCap(withBudgetCode(withoutSuggestions(cfg.Introspection, NewErrorPresenter(cfg.Logger)))))
	srv.SetRecoverFunc(NewRecoverFunc(cfg.Logger))
	return srv
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// singleJSONPost is gqlgen's POST transport behind a check of the body: it must be
// one JSON object (a batch, an array of operations, is refused), and a body cut off
// by the size limit is 413. The check answers before gqlgen would echo a malformed
// body back to the client.
type singleJSONPost struct{ transport.POST }

func (t singleJSONPost) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	buf := bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	// gqlgen's transport reads the body into its own copy: nothing holds buf after Do.
	defer func() {
		if buf.Cap() <= 2*MaxBodyBytes {
			bodyBuffers.Put(buf)
		}
	}()
	_, err := buf.ReadFrom(r.Body)
	body := buf.Bytes()
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			WriteRequestError(w, http.StatusRequestEntityTooLarge, models.CodeBodyTooLarge,
				fmt.Sprintf("request body too large: the limit is %d bytes", tooLarge.Limit))
			return
		}
		WriteRequestError(w, http.StatusBadRequest, models.CodeBadRequest, "the request body could not be read")
		return
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		WriteRequestError(w, http.StatusBadRequest, models.CodeBatchRefused,
			"batched requests are not supported: send one operation per request")
		return
	case len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed):
		WriteRequestError(w, http.StatusBadRequest, models.CodeBadRequest,
			`the request body must be one JSON object: {"query": ..., "variables": {...}}`)
		return
	}
	var params struct {
		Query      string         `json:"query"`
		Extensions map[string]any `json:"extensions"`
	}
	if json.Unmarshal(trimmed, &params) == nil && params.Query == "" && params.Extensions["persistedQuery"] == nil {
		writeNoQuery(w)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &specAnswer{ResponseWriter: w}
	t.POST.Do(sw, r, exec)
	sw.finish()
}

// bodyBuffers hold request bodies while singleJSONPost checks them.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// WriteRequestError answers a request refused before GraphQL could read it, in the
// GraphQL error shape clients already parse.
func WriteRequestError(w http.ResponseWriter, status int, code, message string) {
	b, _ := json.Marshal(map[string]any{"errors": []map[string]any{{
		"message": message, "extensions": map[string]any{"code": code},
	}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

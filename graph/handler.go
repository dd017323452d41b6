package graph

import (
	"github.com/99designs/gqlgen/graphql"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
)

// HandlerConfig is what the GraphQL endpoint needs; NewHandler fills defaults.
type HandlerConfig struct {
	Resolvers     ResolverRoot
	StepUpMaxAge  time.Duration
	Now           func() time.Time
	Introspection bool // development only until admins get it in production
	MaxComplexity int  // default 1000
	Logger        *slog.Logger
	// Extensions are added after the built-in ones (metrics, limits).
	Extensions []graphql.HandlerExtension
}

// NewHandler builds the /graphql endpoint explicitly (never gqlgen's default server):
// JSON POST only, so no mutation can run over GET; a complexity limit; introspection
// only where allowed; and the error presenter and recover function of this package.
func NewHandler(cfg HandlerConfig) *handler.Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxComplexity <= 0 {
		cfg.MaxComplexity = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	srv := handler.New(NewExecutableSchema(Config{
		Resolvers:  cfg.Resolvers,
		Directives: NewDirectives(cfg.StepUpMaxAge, cfg.Now),
	}))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.FixedComplexityLimit(cfg.MaxComplexity))
	for _, e := range cfg.Extensions {
		srv.Use(e)
	}
	srv.SetErrorPresenter(NewErrorPresenter(cfg.Logger))
	srv.SetRecoverFunc(NewRecoverFunc(cfg.Logger))
	return srv
}

package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/httpserver"
	"github.com/scoville/scoville/logging"
)

// RunDevIDP serves the development OpenID Connect issuer on loopback. It refuses to
// run unless APP_ENV is development, so it can never stand in for a real issuer in
// production.
func RunDevIDP(ctx context.Context, getenv func(string) string, stderr *os.File) int {
	cfg, err := config.LoadDevIDP(getenv)
	if errors.Is(err, config.ErrDevIDPNotDevelopment) {
		fmt.Fprintf(stderr, "scoville devidp: refused: %v\n", err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "scoville devidp: invalid configuration:\n%v\n", err)
		return 2
	}
	addr, audience, redirects := cfg.Addr, cfg.Audience, cfg.RedirectURIs
	logger := logging.New(stderr, nil)
	issuer, err := devidp.New("http://"+addr, audience)
	if err != nil {
		fmt.Fprintf(stderr, "scoville devidp: %v\n", err)
		return 1
	}
	// The Playground signs in as this public client (PLAYGROUND_OIDC_CLIENT_ID on the
	// server); DEVIDP_REDIRECT_URIS lists the exact URIs it may return to.
	if err := issuer.RegisterClient(devidp.PlaygroundClientID, redirects...); err != nil {
		fmt.Fprintf(stderr, "scoville devidp: DEVIDP_REDIRECT_URIS: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "scoville devidp: listen: %v\n", err)
		return 1
	}
	logger.Info("development identity provider listening", "issuer", issuer.IssuerURL(), "audience", audience,
		"playground_client_id", devidp.PlaygroundClientID, "redirect_uris", strings.Join(redirects, ","))
	srv := httpserver.NewServer(addr, httpserver.RequestID(issuer.Handler()), logger)
	if err := httpserver.Serve(ctx, srv, ln, shutdownGrace); err != nil {
		fmt.Fprintf(stderr, "scoville devidp: %v\n", err)
		return 1
	}
	return 0
}

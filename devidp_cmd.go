package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/scoville/scoville/devidp"
	"github.com/scoville/scoville/httpserver"
	"github.com/scoville/scoville/logging"
)

// runDevIDP serves the development OpenID Connect issuer on loopback. It refuses to
// run unless APP_ENV is development, so it can never stand in for a real issuer in
// production.
func runDevIDP(ctx context.Context, getenv func(string) string, stderr *os.File) int {
	if env := getenv("APP_ENV"); env != "" && env != "development" {
		fmt.Fprintln(stderr, "scoville devidp: refused: the development identity provider only runs with APP_ENV=development")
		return 2
	}
	addr := getenv("DEVIDP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9096"
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintln(stderr, "scoville devidp: DEVIDP_ADDR must be a loopback host:port such as 127.0.0.1:9096")
		return 2
	}
	audience := getenv("OIDC_AUDIENCE")
	if audience == "" {
		audience = "scoville-api"
	}
	logger := logging.New(stderr, nil)
	issuer, err := devidp.New("http://"+addr, audience)
	if err != nil {
		fmt.Fprintf(stderr, "scoville devidp: %v\n", err)
		return 1
	}
	// The Playground signs in as this public client (PLAYGROUND_OIDC_CLIENT_ID on the
	// server); DEVIDP_REDIRECT_URIS lists the exact URIs it may return to.
	redirects := []string{"http://127.0.0.1:8080/playground", "http://localhost:8080/playground"}
	if raw := getenv("DEVIDP_REDIRECT_URIS"); raw != "" {
		redirects = strings.Split(raw, ",")
		for k := range redirects {
			redirects[k] = strings.TrimSpace(redirects[k])
		}
	}
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

// Package config reads Scoville's settings from the environment once, at start.
//
// Load checks every variable and returns all problems at once, joined with
// errors.Join, each naming its variable, so an operator fixes a deployment in one
// pass. Production mode (APP_ENV=production) refuses to start without the
// credentials and issuer a real deployment needs, and insists on https.
//
// Credentials are held as Secret, which prints, marshals and logs as
// "[REDACTED]"; error messages never contain any configured value, secret or
// not, so a Config or a Load error is always safe to log.
package config

// Package audit owns the audit log (OPS-4): who did which manual action to what, why,
// from where, and what it looked like before and after. Entries are written in the
// same transaction as the action's effect, so there is no effect without its entry;
// the database refuses to change or delete them (migration 00008).
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"gorm.io/gorm"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/clientip"
	"github.com/scoville/scoville/logging"
	"github.com/scoville/scoville/models"
	"github.com/scoville/scoville/paging"
)

// Target types name what an entry is about. One spelling per kind of object, so a
// search of the log for everything done to a subscription finds every action on it
// (a resync and a cancel alike).
const (
	TargetSubscription = "subscription"
	TargetPayment      = "payment"
	TargetCustomer     = "customer"
	TargetWebhookEvent = "webhook_event"
	TargetPlan         = "plan"
	TargetOperation    = "operation" // a refused attempt: the operation is the target
)

// Target types of outgoing webhooks (package outbox).
const (
	TargetWebhookEndpoint = "webhook_endpoint"
	TargetWebhookDelivery = "webhook_delivery"
)

// Action is one manual action to record. Before and After are summaries of the
// target (ids, statuses, amounts); they are marshalled to JSON and masked.
type Action struct {
	Name       string
	TargetType string
	TargetID   string
	Reason     string
	Before     any
	After      any
	// AttemptID names the attempted entry (RecordAttempt) this one completes; it is
	// kept in After as attemptId.
	AttemptID string
}

// Record writes the entry for a on tx, the transaction that carries the action's
// effect. The actor, request id and client address come from ctx and p.
func Record(ctx context.Context, tx *gorm.DB, p *auth.Principal, a Action) error {
	e, err := entry(ctx, p, a)
	if err != nil {
		return err
	}
	if err := tx.WithContext(ctx).Create(e).Error; err != nil {
		return fmt.Errorf("audit: record %s: %w", a.Name, err)
	}
	return nil
}

// RefusedSuffix marks the action of a refused attempt, e.g. "refundPayment.forbidden".
const RefusedSuffix = ".forbidden"

// RecordRefused writes that p tried a privileged operation without the role for it.
// It stands alone: nothing else happened to roll back with it.
func RecordRefused(ctx context.Context, db *gorm.DB, p *auth.Principal, operation string, need auth.Role) error {
	return Record(ctx, db, p, Action{
		Name:       operation + RefusedSuffix,
		TargetType: TargetOperation,
		TargetID:   operation,
		Reason:     "refused: needs role " + string(need),
	})
}

// Refusals records refused privileged attempts as they happen; its Record fits the
// GraphQL layer's hook for FORBIDDEN refusals. Each principal's entries are bounded
// (RefusalBurst at once, RefusalsPerMinute on average), so a flood of refused
// requests cannot write unbounded rows; refusals over the bound are counted in
// scoville_audit_refusals_dropped_total instead.
type Refusals struct {
	db      *gorm.DB
	logger  *slog.Logger
	dropped prometheus.Counter

	mu  sync.Mutex
	per map[string]*rate.Limiter // by issuer and subject; at most maxRefusalKeys
	now func() time.Time
}

// The bound of refusal entries per principal.
const (
	RefusalBurst      = 30
	RefusalsPerMinute = 30
	maxRefusalKeys    = 10_000
)

// NewRefusals builds the recorder on the application's connection pool and registers
// its counter on reg (nil: not registered).
func NewRefusals(db *gorm.DB, logger *slog.Logger, reg prometheus.Registerer) *Refusals {
	r := &Refusals{db: db, logger: logger, per: map[string]*rate.Limiter{}, now: time.Now,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scoville_audit_refusals_dropped_total",
			Help: "Refused privileged attempts not written to the audit log because their principal was over its bound.",
		})}
	if reg != nil {
		reg.MustRegister(r.dropped)
	}
	return r
}

// refusalTimeout bounds the write of one refusal.
const refusalTimeout = 5 * time.Second

// Record writes the refusal of operation to p, unless p is over its bound. The refusal
// stands whatever happens here: the entry is written even when the caller has gone
// away, and a failure to write it is logged (without the actor's personal data), not
// returned.
func (r *Refusals) Record(ctx context.Context, p *auth.Principal, operation string, need auth.Role) {
	if !r.allow(p) {
		r.dropped.Inc()
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refusalTimeout)
	defer cancel()
	if err := RecordRefused(wctx, r.db, p, operation, need); err != nil {
		r.logger.ErrorContext(ctx, "audit: refused attempt not recorded", "operation", operation, "error", err.Error())
	}
}

// allow takes one of p's refusal entries. Past maxRefusalKeys principals the memory
// starts over, which can only give each principal a fresh burst.
func (r *Refusals) allow(p *auth.Principal) bool {
	key := p.Issuer + " " + p.Subject
	r.mu.Lock()
	defer r.mu.Unlock()
	lim, ok := r.per[key]
	if !ok {
		if len(r.per) >= maxRefusalKeys {
			clear(r.per)
		}
		lim = rate.NewLimiter(rate.Limit(float64(RefusalsPerMinute)/60), RefusalBurst)
		r.per[key] = lim
	}
	return lim.AllowN(r.now(), 1)
}

func entry(ctx context.Context, p *auth.Principal, a Action) (*models.AuditEntry, error) {
	if p == nil {
		return nil, fmt.Errorf("audit: %s without an actor", a.Name)
	}
	e := &models.AuditEntry{
		ActorIssuer:  p.Issuer,
		ActorSubject: p.Subject,
		Action:       a.Name,
		TargetType:   a.TargetType,
		TargetID:     a.TargetID,
		Reason:       maskEmails(a.Reason),
	}
	e.ActorRoleList = make([]string, 0, len(p.Roles)) // never NULL, even for the System actor
	for _, r := range p.Roles {
		e.ActorRoleList = append(e.ActorRoleList, string(r))
	}
	if id := logging.RequestID(ctx); id != "" {
		e.RequestID = &id
	}
	if ip := clientip.From(ctx); ip.IsValid() {
		s := ip.String()
		e.ClientIP = &s
	}
	var err error
	if e.Before, err = summary(a.Before); err != nil {
		return nil, err
	}
	after := a.After
	if a.AttemptID != "" {
		after = withAttempt(after, a.AttemptID)
	}
	if e.After, err = summary(after); err != nil {
		return nil, err
	}
	return e, nil
}

// maskedKeys are summary keys whose values are personal data; they never reach the
// log even if a caller passes them.
var maskedKeys = map[string]bool{
	"email": true, "name": true, "address": true, "shippingaddress": true, "shipping_address": true,
	"line1": true, "line2": true, "city": true, "postalcode": true, "postal_code": true, "phone": true,
}

// summary marshals v to JSON with personal fields masked at any depth.
func summary(v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: summary: %w", err)
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, fmt.Errorf("audit: summary: %w", err)
	}
	raw, err = json.Marshal(mask(tree))
	if err != nil {
		return nil, fmt.Errorf("audit: summary: %w", err)
	}
	s := string(raw)
	return &s, nil
}

// emailPattern finds what looks like an e-mail address inside free text.
var emailPattern = regexp.MustCompile(`[^\s@<>()"',;:]+@[^\s@<>()"',;:]+\.[^\s@<>()"',;:]+`)

// maskEmails blanks e-mail addresses in free text (a reason, a summary value), so the
// log never keeps one even when staff type it.
func maskEmails(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return emailPattern.ReplaceAllString(s, "[masked]")
}

func mask(v any) any {
	switch t := v.(type) {
	case string:
		return maskEmails(t)
	case map[string]any:
		for k, x := range t {
			if maskedKeys[strings.ToLower(k)] {
				t[k] = "[masked]"
				continue
			}
			t[k] = mask(x)
		}
	case []any:
		for i, x := range t {
			t[i] = mask(x)
		}
	}
	return v
}

// Log is the admin's read of the audit log.
type Log struct{ db *gorm.DB }

// NewLog builds the reader.
func NewLog(db *gorm.DB) *Log { return &Log{db: db} }

// List pages through entries newest first.
func (l *Log) List(ctx context.Context, first *int, after *string) (*models.AuditEntryConnection, error) {
	rows, more, err := paging.Fetch[*models.AuditEntry](l.db.WithContext(ctx), "created_at", first, after)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	return paging.Connection[models.AuditEntryConnection](rows, more, func(e *models.AuditEntry) (time.Time, string) { return e.CreatedAt, e.ID }), nil
}

// Provider effects (a refund, a staff cancellation) are audited in two steps, so no
// effect at the provider exists without an entry naming its actor, whatever crashes
// between the provider's answer and our commit.
const (
	// AttemptedSuffix marks the entry committed before the provider is called, e.g.
	// "refundPayment.attempted". Its After holds the provider idempotency key.
	AttemptedSuffix = ".attempted"
	// CompletedSuffix marks the entry the system writes when the provider's own report
	// (a webhook, a reconciliation read) completes an attempt whose actor never
	// recorded the outcome.
	CompletedSuffix = ".completed"
)

// System is the actor of entries the system writes on the provider's report.
var System = &auth.Principal{Issuer: "scoville", Subject: "system"}

// RecordAttempt commits on db, its own transaction, before the provider is called,
// that p is about to cause a under the provider idempotency key key; it returns the
// entry's id, which the entry recording the outcome names as attemptId.
func RecordAttempt(ctx context.Context, db *gorm.DB, p *auth.Principal, a Action, key string) (string, error) {
	after := map[string]any{"key": key}
	if a.After != nil {
		after["planned"] = a.After
	}
	a.Name, a.After = a.Name+AttemptedSuffix, after
	e, err := entry(ctx, p, a)
	if err != nil {
		return "", err
	}
	if err := db.WithContext(ctx).Create(e).Error; err != nil {
		return "", fmt.Errorf("audit: record %s: %w", a.Name, err)
	}
	return e.ID, nil
}

// Attempt is an earlier attempt of an action under a provider key.
type Attempt struct {
	ID      string
	Planned json.RawMessage // the planned effect RecordAttempt was given (an amount, say)
}

// FindAttempt returns the attempt of the action named name under key, if one was
// recorded: a retry of it must finish that effect, not judge it afresh.
func FindAttempt(ctx context.Context, db *gorm.DB, name, key string) (*Attempt, error) {
	var rows []struct {
		ID      string
		Planned []byte
	}
	err := db.WithContext(ctx).Raw(`SELECT id, after->'planned' AS planned FROM audit_log
		WHERE action = ? AND after->>'key' = ? ORDER BY created_at LIMIT 1`, name+AttemptedSuffix, key).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("audit: find attempt: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &Attempt{ID: rows[0].ID, Planned: rows[0].Planned}, nil
}

// CompleteOpen writes on tx, as the System actor, a completion entry for every
// attempt of the action named name on the target that no entry completes yet and
// that the provider's report proves done: done(key, planned) is given the attempt's
// provider key and planned effect. evidence says what the provider reported (an
// event id, a status). It returns how many it completed. Completions of one target
// are serialized, so two reports never complete one attempt twice.
func CompleteOpen(ctx context.Context, tx *gorm.DB, name, targetType, targetID string,
	done func(key string, planned json.RawMessage) bool, evidence map[string]any,
) (int, error) {
	tx = tx.WithContext(ctx)
	if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, "audit:"+targetType+":"+targetID).Error; err != nil {
		return 0, fmt.Errorf("audit: complete: lock: %w", err)
	}
	var open []struct {
		ID      string
		Key     string
		Planned []byte
	}
	err := tx.Raw(`SELECT a.id, coalesce(a.after->>'key', '') AS key, a.after->'planned' AS planned FROM audit_log a
		WHERE a.action = ? AND a.target_type = ? AND a.target_id = ?
		AND NOT EXISTS (SELECT 1 FROM audit_log c WHERE c.after->>'attemptId' = a.id::text)
		ORDER BY a.created_at`, name+AttemptedSuffix, targetType, targetID).Scan(&open).Error
	if err != nil {
		return 0, fmt.Errorf("audit: complete: open attempts: %w", err)
	}
	n := 0
	for _, a := range open {
		if !done(a.Key, a.Planned) {
			continue
		}
		if err := Record(ctx, tx, System, Action{
			Name: name + CompletedSuffix, TargetType: targetType, TargetID: targetID,
			Reason: "completed from the payment provider's report", After: evidence, AttemptID: a.ID,
		}); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// withAttempt adds attemptId to a summary: beside its fields when it is an object,
// else around it.
func withAttempt(after any, id string) any {
	raw, err := json.Marshal(after)
	var fields map[string]any
	if err == nil && json.Unmarshal(raw, &fields) == nil && fields != nil {
		fields["attemptId"] = id
		return fields
	}
	return map[string]any{"attemptId": id, "value": after}
}

package models

import "time"

// AuditEntry is one manual action by staff, or a refused attempt at one (OPS-4). The
// database refuses to change or delete it, so the trail holds even against our code.
type AuditEntry struct {
	ID            string `gorm:"type:uuid;primaryKey;default:gen_random_uuid()"`
	ActorIssuer   string
	ActorSubject  string
	ActorRoleList []string `gorm:"column:actor_roles;serializer:json"`
	Action        string
	TargetType    string
	TargetID      string
	Reason        string
	RequestID     *string
	ClientIP      *string
	// Before and After are masked JSON summaries of the target: ids, statuses and
	// amounts, never personal data.
	Before    *string `gorm:"type:jsonb"`
	After     *string `gorm:"type:jsonb"`
	CreatedAt time.Time
}

// TableName keeps the table's name singular, as it reads: the audit log.
func (AuditEntry) TableName() string { return "audit_log" }

// Actor names who acted in one string: the issuer and the subject of their token.
func (e *AuditEntry) Actor() string { return e.ActorIssuer + "|" + e.ActorSubject }

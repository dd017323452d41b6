package models

import (
	"errors"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/scoville/scoville/sealing"
)

// The sealed columns are bound to their row's id (package sealing), so a row must
// have its id before its values are sealed: these hooks give one on insert where the
// database default would otherwise choose it too late.

// BeforeCreate gives the customer its id before e-mail and name are sealed.
func (c *Customer) BeforeCreate(*gorm.DB) error {
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	return nil
}

// BeforeSave keeps the blind index in step with the e-mail it indexes; an empty
// e-mail has none.
func (c *Customer) BeforeSave(tx *gorm.DB) error {
	k, ok := sealing.FromDB(tx)
	if !ok {
		return errors.New("models: customer e-mail index needs the data keys (sealing.Install)")
	}
	idx, err := k.EmailIndex(c.Email)
	if err != nil {
		return err
	}
	c.EmailHash = idx
	return nil
}

// BeforeCreate gives the shipment its id before its address is sealed.
func (s *Shipment) BeforeCreate(*gorm.DB) error {
	if s.ID == "" {
		s.ID = uuid.NewString()
	}
	return nil
}

// BeforeCreate gives the event its id before its payload is sealed.
func (e *WebhookEvent) BeforeCreate(*gorm.DB) error {
	if e.ID == "" {
		e.ID = uuid.NewString()
	}
	return nil
}

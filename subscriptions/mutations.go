package subscriptions

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/scoville/scoville/auth"
	"github.com/scoville/scoville/gateway"
	"github.com/scoville/scoville/idempotency"
	liveupdates "github.com/scoville/scoville/live" // "live" names a func of this package
	"github.com/scoville/scoville/models"
)

// Operation names scope idempotency keys; they are the GraphQL mutation names.
const (
	OpStartCheckout       = "startCheckout"
	OpCreate              = "createSubscription"
	OpChangePlan          = "changeSubscriptionPlan"
	OpPause               = "pauseSubscription"
	OpResume              = "resumeSubscription"
	OpCancel              = "cancelSubscription"
	OpUpdateAddress       = "updateShippingAddress"
	maxPauseAhead         = 366 * 24 * time.Hour
	minPauseAhead         = time.Hour
	subscriptionFieldPath = "subscriptionId"
)

// prepareSale gathers what starting a subscription needs: an active plan, the caller
// and their Stripe customer (created on first use), and the promotion code's id.
func (s *Service) prepareSale(ctx context.Context, p *auth.Principal, planID string, code *string) (
	plan *models.Plan, c *models.Customer, stripeCustomer, promo string, err error,
) {
	if plan, err = s.activePlan(ctx, planID, "input", "planId"); err != nil {
		return nil, nil, "", "", err
	}
	if c, err = s.customers.Provision(ctx, p); err != nil {
		return nil, nil, "", "", err
	}
	if promo, err = s.promotion(ctx, code); err != nil {
		return nil, nil, "", "", err
	}
	if stripeCustomer, err = s.stripeCustomer(ctx, c); err != nil {
		return nil, nil, "", "", err
	}
	return plan, c, stripeCustomer, promo, nil
}

// StartCheckout opens a Stripe-hosted Checkout Session in subscription mode for the
// caller's Stripe customer. Card details are typed on Stripe's page, never ours; the
// local subscription appears when Stripe reports the completed session.
func (s *Service) StartCheckout(ctx context.Context, p *auth.Principal, in models.StartCheckoutInput) (*Result, error) {
	// The allowed origins are configuration, which may change between a call and
	// its retry: judged only for a new request.
	origins := func() error {
		if err := s.cfg.RedirectOrigins.Check(in.SuccessURL, "input", "successUrl"); err != nil {
			return err
		}
		return s.cfg.RedirectOrigins.Check(in.CancelURL, "input", "cancelUrl")
	}
	return s.run(ctx, p, OpStartCheckout, in.IdempotencyKey, in, origins, func(ctx context.Context, scope idempotency.Scope) (Outcome, error) {
		plan, c, stripeCustomer, promo, err := s.prepareSale(ctx, p, in.PlanID, in.PromotionCode)
		if err != nil {
			return Outcome{}, err
		}
		sess, err := s.gw.CreateCheckoutSession(ctx, scope.ProviderKey("session"), gateway.CheckoutInput{
			CustomerID: stripeCustomer, PriceID: *plan.StripePriceID,
			SuccessURL: in.SuccessURL, CancelURL: in.CancelURL,
			ClientReferenceID: c.ID, TrialDays: plan.TrialDays, PromotionCodeID: promo,
			Metadata:     map[string]string{gateway.MetadataCustomerID: c.ID, gateway.MetadataPlanID: plan.ID},
			AutomaticTax: s.cfg.AutomaticTax, ShippingCountries: s.cfg.ShippingCountries,
		})
		if err != nil {
			return Outcome{}, providerFailure(err)
		}
		s.logger.InfoContext(ctx, "checkout session created", "customer_id", c.ID, "plan_id", plan.ID, "stripe_session_id", sess.ID)
		return Outcome{URL: sess.URL, SessionID: sess.ID}, nil
	})
}

// Create subscribes the caller with payment_behavior=default_incomplete: the
// subscription stays INCOMPLETE until the client confirms the first payment (3-D
// Secure) with the returned client secret and Stripe reports it paid.
//
// Stripe is called first, with a key derived from the client's; the local row is
// written from Stripe's answer under an id derived the same way. A crash in between
// is finished by the client's retry: Stripe replays its answer and the row is written.
func (s *Service) Create(ctx context.Context, p *auth.Principal, in models.CreateSubscriptionInput) (*Result, error) {
	if in.ShippingAddress == nil {
		return nil, models.NewUserError(models.UserErrorInvalid, "is required", "input", "shippingAddress")
	}
	addr, err := NormalizeAddress(*in.ShippingAddress, "input", "shippingAddress")
	if err != nil {
		return nil, err
	}
	return s.run(ctx, p, OpCreate, in.IdempotencyKey, in, nil, func(ctx context.Context, scope idempotency.Scope) (Outcome, error) {
		plan, c, stripeCustomer, promo, err := s.prepareSale(ctx, p, in.PlanID, in.PromotionCode)
		if err != nil {
			return Outcome{}, err
		}
		id := scope.DerivedID()
		gs, secret, err := s.gw.CreateSubscription(ctx, scope.ProviderKey("create"), gateway.SubscriptionInput{
			CustomerID: stripeCustomer, PriceID: *plan.StripePriceID, TrialDays: plan.TrialDays,
			PromotionCodeID: promo, AutomaticTax: s.cfg.AutomaticTax,
			Metadata: map[string]string{metadataSubscriptionID: id, gateway.MetadataCustomerID: c.ID, gateway.MetadataPlanID: plan.ID},
		})
		if err != nil {
			return Outcome{}, providerFailure(err)
		}
		sub := models.Subscription{ID: id, CustomerID: c.ID, PlanID: plan.ID, ShippingAddress: addr}
		applyProvider(&sub, gs)
		// The row may exist already: written by a retry after a crash, or by Stripe's
		// event that overtook this answer (it carries our id in metadata). Events
		// then own the state; this call only adds the address they cannot know.
		err = s.db.WithContext(ctx).Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "id"}},
			DoUpdates: clause.AssignmentColumns([]string{"shipping_address", "updated_at"}),
		}).Create(&sub).Error
		if err != nil {
			return Outcome{}, fmt.Errorf("subscriptions: store: %w", err)
		}
		s.logger.InfoContext(ctx, "subscription created", "subscription_id", id, "customer_id", c.ID, "plan_id", plan.ID,
			"stripe_subscription_id", gs.ID, "status", string(sub.Status))
		return Outcome{SubscriptionID: id, ClientSecret: secret}, nil
	})
}

// change runs a state change of one owned subscription at Stripe: check that the
// state allows it (nothing is sent to Stripe otherwise), call Stripe with no lock
// held, then store Stripe's answer through the rule events follow (applyAnswer).
// A change owns no column of its own: what it stores is what Stripe answered, and
// only where no newer event or read has applied meanwhile. check (nil: none)
// judges time-bound input for a new request only (see runKeyed).
func (s *Service) change(ctx context.Context, p *auth.Principal, op, subID, key string, input any,
	check func() error,
	allowed func(*models.Subscription) error,
	call func(ctx context.Context, providerKey string, sub *models.Subscription) (gateway.Subscription, error),
) (*Result, error) {
	return s.run(ctx, p, op, key, input, check, func(ctx context.Context, scope idempotency.Scope) (Outcome, error) {
		sub, _, err := s.owned(ctx, p, subID)
		if err != nil {
			return Outcome{}, err
		}
		if err := allowed(sub); err != nil {
			return Outcome{}, err
		}
		if sub.StripeSubscriptionID == nil {
			return Outcome{}, invalidState("the subscription is not set up at the payment provider yet")
		}
		// Stripe's answer is placed among its events at the moment it was asked
		// (wall clock, as Stripe's), before every event of that second.
		calledAt := time.Now()
		gs, err := call(ctx, scope.ProviderKey("call"), sub)
		if err != nil {
			return Outcome{}, providerFailure(err)
		}
		res, err := s.syncer.applyAnswer(ctx, sub.ID, gs, calledAt, nil)
		if err != nil {
			return Outcome{}, fmt.Errorf("subscriptions: %s: store: %w", op, err)
		}
		s.logger.InfoContext(ctx, "subscription changed", "operation", op, "subscription_id", sub.ID,
			"status", string(res.sub.Status), "answer_applied", res.applied)
		return Outcome{SubscriptionID: sub.ID}, nil
	})
}

func invalidState(msg string) error {
	return models.NewUserError(models.UserErrorInvalidState, msg, "input", subscriptionFieldPath)
}

// live refuses subscriptions that have ended or never started.
func live(sub *models.Subscription) error {
	switch sub.Status {
	case models.SubscriptionCanceled, models.SubscriptionIncompleteExpired:
		return invalidState("the subscription has ended")
	case models.SubscriptionIncomplete:
		return invalidState("the subscription's first payment is not complete yet")
	}
	return nil
}

// ChangePlan moves the subscription to another plan. Within the billing
// interval the change is prorated: no new period starts, and the difference is
// billed with the next renewal. Across intervals nothing is prorated: Stripe
// starts and bills the new plan's period at once, in full, and credits nothing
// for the current period, whose box has shipped (a credit would give it back
// for free).
func (s *Service) ChangePlan(ctx context.Context, p *auth.Principal, in models.ChangeSubscriptionPlanInput) (*Result, error) {
	var (
		plan    *models.Plan
		prorate bool
	)
	return s.change(ctx, p, OpChangePlan, in.SubscriptionID, in.IdempotencyKey, in, nil,
		func(sub *models.Subscription) error {
			if err := live(sub); err != nil {
				return err
			}
			if sub.PlanID == in.PlanID {
				return models.NewUserError(models.UserErrorInvalid, "the subscription is already on this plan", "input", "planId")
			}
			var err error
			if plan, err = s.activePlan(ctx, in.PlanID, "input", "planId"); err != nil {
				return err
			}
			var current models.Plan
			if err := s.db.WithContext(ctx).Take(&current, "id = ?", sub.PlanID).Error; err != nil {
				return fmt.Errorf("subscriptions: current plan: %w", err)
			}
			if current.Currency != plan.Currency {
				return models.NewUserError(models.UserErrorInvalid, "the new plan must be in the subscription's currency", "input", "planId")
			}
			if sub.StripeItemID == nil {
				return invalidState("the subscription is not set up at the payment provider yet")
			}
			prorate = current.Interval == plan.Interval
			return nil
		},
		func(ctx context.Context, key string, sub *models.Subscription) (gateway.Subscription, error) {
			return s.gw.ChangeSubscriptionPrice(ctx, key, *sub.StripeSubscriptionID, gateway.ChangePriceInput{
				ItemID: *sub.StripeItemID, PriceID: *plan.StripePriceID, Prorate: prorate,
			})
		},
	)
}

// Pause stops billing and deliveries (Stripe pause_collection), until resumeAt if
// given. resumeAt is judged against the clock for a new request only: a retry of
// an answered one replays its answer however late it comes.
func (s *Service) Pause(ctx context.Context, p *auth.Principal, in models.PauseSubscriptionInput) (*Result, error) {
	window := func() error {
		if in.ResumeAt == nil {
			return nil
		}
		if ahead := in.ResumeAt.Sub(s.now()); ahead < minPauseAhead || ahead > maxPauseAhead {
			return models.NewUserError(models.UserErrorInvalid, "must be between one hour and one year from now", "input", "resumeAt")
		}
		return nil
	}
	return s.change(ctx, p, OpPause, in.SubscriptionID, in.IdempotencyKey, in, window,
		func(sub *models.Subscription) error {
			if sub.Status == models.SubscriptionPaused {
				return invalidState("the subscription is already paused")
			}
			if err := live(sub); err != nil {
				return err
			}
			if sub.Status != models.SubscriptionActive && sub.Status != models.SubscriptionTrialing {
				return invalidState("only an active subscription can be paused; settle the open payment first")
			}
			return nil
		},
		func(ctx context.Context, key string, sub *models.Subscription) (gateway.Subscription, error) {
			return s.gw.PauseSubscription(ctx, key, *sub.StripeSubscriptionID, in.ResumeAt)
		})
}

// Resume lifts a pause.
func (s *Service) Resume(ctx context.Context, p *auth.Principal, in models.ResumeSubscriptionInput) (*Result, error) {
	return s.change(ctx, p, OpResume, in.SubscriptionID, in.IdempotencyKey, in, nil,
		func(sub *models.Subscription) error {
			if sub.Status != models.SubscriptionPaused {
				return invalidState("the subscription is not paused")
			}
			return nil
		},
		func(ctx context.Context, key string, sub *models.Subscription) (gateway.Subscription, error) {
			return s.gw.ResumeSubscription(ctx, key, *sub.StripeSubscriptionID)
		})
}

// Cancel ends the subscription now, or at the end of the paid period.
func (s *Service) Cancel(ctx context.Context, p *auth.Principal, in models.CancelSubscriptionInput) (*Result, error) {
	return s.change(ctx, p, OpCancel, in.SubscriptionID, in.IdempotencyKey, in, nil,
		func(sub *models.Subscription) error { return cancellable(sub, in.AtPeriodEnd) },
		func(ctx context.Context, key string, sub *models.Subscription) (gateway.Subscription, error) {
			return s.gw.CancelSubscription(ctx, key, *sub.StripeSubscriptionID, in.AtPeriodEnd)
		})
}

// UpdateAddress changes where the next boxes ship. Boxes already paid for keep the
// address they were paid with. The address is the one column of a subscription
// that is ours and not Stripe's: it alone is written, with the state check, under
// the row's lock, so an event's state is neither overwritten nor raced.
func (s *Service) UpdateAddress(ctx context.Context, p *auth.Principal, in models.UpdateShippingAddressInput) (*Result, error) {
	if in.Address == nil {
		return nil, models.NewUserError(models.UserErrorInvalid, "is required", "input", "address")
	}
	addr, err := NormalizeAddress(*in.Address, "input", "address")
	if err != nil {
		return nil, err
	}
	return s.run(ctx, p, OpUpdateAddress, in.IdempotencyKey, in, nil, func(ctx context.Context, scope idempotency.Scope) (Outcome, error) {
		owned, _, err := s.owned(ctx, p, in.SubscriptionID)
		if err != nil {
			return Outcome{}, err
		}
		err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var sub models.Subscription
			if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&sub, "id = ?", owned.ID).Error; err != nil {
				return fmt.Errorf("subscriptions: %s: lock: %w", OpUpdateAddress, err)
			}
			if sub.Status.Ended() {
				return invalidState("the subscription has ended")
			}
			sub.ShippingAddress = addr
			// Through the struct, so the address is sealed (a column-value update would not be).
			if err := tx.Model(&sub).Select("shipping_address", "updated_at").Updates(&sub).Error; err != nil {
				return fmt.Errorf("subscriptions: %s: store: %w", OpUpdateAddress, err)
			}
			return liveupdates.Announce(tx, sub.ID)
		})
		if err != nil {
			return Outcome{}, err
		}
		s.logger.InfoContext(ctx, "subscription changed", "operation", OpUpdateAddress, "subscription_id", owned.ID)
		return Outcome{SubscriptionID: owned.ID}, nil
	})
}

// BillingPortal opens Stripe's billing portal for the caller's own Stripe customer,
// where payment methods are managed (card data never reaches us).
func (s *Service) BillingPortal(ctx context.Context, p *auth.Principal, in models.CreateBillingPortalSessionInput) (*Result, error) {
	if err := s.cfg.RedirectOrigins.Check(in.ReturnURL, "input", "returnUrl"); err != nil {
		return nil, err
	}
	c, err := s.customers.Provision(ctx, p)
	if err != nil {
		return nil, err
	}
	if c.StripeCustomerID == nil {
		return nil, models.NewUserError(models.UserErrorInvalidState, "there is no billing account yet; subscribe first")
	}
	// Portal sessions are short-lived reads of the customer's own account; each call
	// may open a new one, so the key is per minute rather than per client request.
	urlSum := sha256.Sum256([]byte(in.ReturnURL))
	key := fmt.Sprintf("scv-portal-%s-%d-%x", c.ID, time.Now().Unix()/60, urlSum[:8])
	url, err := s.gw.CreateBillingPortalSession(ctx, key, *c.StripeCustomerID, in.ReturnURL)
	if err != nil {
		return nil, providerFailure(err)
	}
	return &Result{Outcome: Outcome{URL: url}}, nil
}

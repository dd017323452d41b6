// Package outbox owns outgoing webhooks: the endpoints staff register for the
// brand's downstream systems (3PL, CRM, accounting), the messages written in the
// transaction of the fact that causes them, and their signed delivery (Standard
// Webhooks 1.0) from River jobs on a queue of their own.
//
// A message is inserted by the owner of its fact, inside the transaction that
// commits the fact (ShipmentCreated from fulfilment.Create, PaymentChanged from
// payments.Save, SubscriptionUpdated where a subscription row changes,
// CustomerErased from the erasure): a fact that commits always has its messages, a
// rolled back one has none. A message's id is derived from its fact, and unique, so
// a fact recorded twice writes no second message. Each message gets one delivery
// per enabled endpoint subscribed to its type, and one job per delivery, inserted in
// the same transaction.
//
// Tables: webhook_endpoints, webhook_messages, webhook_deliveries,
// webhook_delivery_attempts and webhook_subscription_sequences (migration 00011).
package outbox

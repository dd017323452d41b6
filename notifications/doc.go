// Package notifications confirms to customers, by e-mail, every change to their
// subscription and every payment outcome (SUB-3), and tells them how to fix a failed
// payment (SUB-4).
//
// A notification is written by Enqueue in the same transaction as the change it
// reports, together with the River job that sends it: it exists exactly when its
// cause was committed, and a dedupe key makes it one per cause however often the
// cause is replayed. SendWorker delivers it at least once and records when it did,
// so a retried job does not mail the customer twice after a successful send.
//
// The recipient's address is read at send time, never stored with the notification,
// and never logged: log lines carry the notification id, kind and customer id only.
package notifications

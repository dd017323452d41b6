package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scoville/scoville/database/dbtest"
	"github.com/scoville/scoville/sealing"
	"github.com/scoville/scoville/webhooks/webhooktest"
)

// The fault suite: the real command (serve, work) in processes of their own, a
// burst of signed invoice.paid events from senders that re-send each event until it
// is answered 200, as Stripe does, and one fault once a third are acknowledged.
// Each case asserts that nothing acknowledged is lost, nothing applied twice, and
// every event applied within its bound.

// faultBurst is the number of events in a burst, and faultSenders the senders.
const (
	faultBurst   = 300
	faultSenders = 20
)

// faultRig is one database, the identity provider and the shared configuration of
// the processes under test.
type faultRig struct {
	t     *testing.T
	dbURL string
	env   map[string]string
	app   *testApp // the database, seen through the app (fixture, counts); works nothing
	f     shopFixture
}

func newFaultRig(t *testing.T) *faultRig { return newFaultRigOn(t, dbtest.NewURL(t, "")) }

// newFaultRigOn is newFaultRig on the database at dbURL.
func newFaultRigOn(t *testing.T, dbURL string) *faultRig {
	issuer := startIssuer(t)
	a := newTestApp(t, appOptions{dbURL: dbURL}) // migrates; receives, works nothing
	r := &faultRig{t: t, dbURL: dbURL, app: a, env: map[string]string{
		"APP_ENV": "development", "DATABASE_URL": dbURL,
		"OIDC_ISSUER_URL": issuer.IssuerURL(), "OIDC_AUDIENCE": testAudience,
		"STRIPE_API_BASE": stripeMockURL(t), "STRIPE_SECRET_KEY": "sk_test_123",
		"STRIPE_WEBHOOK_SECRET": testWebhookSecret, "DATA_ENCRYPTION_KEYS": sealing.DevelopmentKeys,
		"LOG_LEVEL": "info", "RATE_LIMIT_WEBHOOKS_PER_MINUTE": "1000000",
		"RATE_LIMIT_ADDRESS_PER_MINUTE": "1000000", "SHUTDOWN_TIMEOUT": "10s",
	}}
	r.f = a.fixture("price_fault", "cus_fault", "sub_fault")
	return r
}

// faultProc is one child process running the real command.
type faultProc struct {
	t    *testing.T
	name string
	addr string // HTTP_ADDR, "" for work
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// start runs `scoville args` with the rig's configuration and extra, and waits
// until it is ready (serve: /readyz answers 200).
func (r *faultRig) start(args string, extra map[string]string) *faultProc {
	t := r.t
	p := &faultProc{t: t, name: args, done: make(chan struct{})}
	env := os.Environ()
	for k, v := range r.env {
		env = append(env, k+"="+v)
	}
	if args == "serve" {
		p.addr = freeAddr(t)
		env = append(env, "HTTP_ADDR="+p.addr)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	logf, err := os.CreateTemp(t.TempDir(), strings.ReplaceAll(args, " ", "_")+"-*.log")
	require.NoError(t, err)
	p.log = logf.Name()
	p.cmd = exec.Command(scovilleBinary(t), strings.Fields(args)...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("log of scoville %s:\n%s", p.name, p.logText())
		}
	})
	if p.addr != "" {
		require.Eventually(t, func() bool { return p.ready() }, 60*time.Second, 50*time.Millisecond,
			"scoville %s never became ready; its log:\n%s", args, p.logText())
	}
	return p
}

func (p *faultProc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// ready is whether /readyz answers 200.
func (p *faultProc) ready() bool {
	resp, err := http.Get("http://" + p.addr + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// signal sends sig and, for SIGKILL, waits for the death.
func (p *faultProc) signal(sig syscall.Signal) {
	require.NoError(p.t, p.cmd.Process.Signal(sig))
	if sig == syscall.SIGKILL {
		<-p.done
	}
}

// exitCode waits for the process to end and returns its exit code.
func (p *faultProc) exitCode() int {
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("scoville %s did not stop; its log:\n%s", p.name, p.logText())
	}
	return p.cmd.ProcessState.ExitCode()
}

// errorLines are the log lines at level ERROR.
func (p *faultProc) errorLines() []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(p.logText()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Level string `json:"level"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Level == "ERROR" {
			out = append(out, sc.Text())
		}
	}
	return out
}

// burst is a set of events sent as Stripe sends them.
type burst struct {
	bodies  [][]byte
	acked   atomic.Int64
	third   chan struct{} // closed once a third are acknowledged
	lastAck atomic.Int64  // unix nanoseconds
}

func (r *faultRig) newBurst(n int) *burst {
	b := &burst{third: make(chan struct{})}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range n {
		id := "in_fault_" + strconv.Itoa(i)
		b.bodies = append(b.bodies, webhooktest.Event("evt_fault_"+strconv.Itoa(i), "invoice.paid", t0,
			paidInvoice(r.f, id, t0.AddDate(0, i, 0)).Object(), nil))
	}
	return b
}

// send delivers every event from faultSenders senders, each re-sending its event
// until it is answered 200, to whichever of targets answers; it returns when all
// are acknowledged.
func (b *burst) send(t *testing.T, targets func() []string) {
	var wg sync.WaitGroup
	next := make(chan []byte)
	client := &http.Client{Timeout: 10 * time.Second}
	var third sync.Once
	for range faultSenders {
		wg.Go(func() {
			for body := range next {
				for try := 0; ; try++ {
					addrs := targets()
					addr := addrs[try%len(addrs)]
					req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/stripe", bytes.NewReader(body))
					if err != nil {
						panic(err)
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Stripe-Signature", webhooktest.Sign(body, testWebhookSecret, time.Now()))
					resp, err := client.Do(req)
					if err == nil {
						_ = resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							break
						}
					}
					time.Sleep(100 * time.Millisecond)
				}
				b.lastAck.Store(time.Now().UnixNano())
				if b.acked.Add(1) >= int64(len(b.bodies))/3 {
					third.Do(func() { close(b.third) })
				}
			}
		})
	}
	for _, body := range b.bodies {
		next <- body
	}
	close(next)
	wg.Wait()
}

// assertAppliedOnce waits until every event of the burst is applied, within bound
// of the later of the fault and the last acknowledgement, and checks each was
// applied once: one payment, one shipment, one notification sent per invoice.
func (r *faultRig) assertAppliedOnce(b *burst, fault time.Time, bound time.Duration) {
	t, a := r.t, r.app
	n := int64(len(b.bodies))
	require.Equal(t, n, b.acked.Load())
	from := time.Unix(0, b.lastAck.Load())
	if fault.After(from) {
		from = fault
	}
	done := func() bool {
		return a.count(`SELECT count(*) FROM webhook_events WHERE status = 'PROCESSED'`) == n &&
			a.count(`SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL`) == n
	}
	for !done() {
		if time.Now().After(from.Add(bound)) {
			t.Fatalf("not every acknowledged event was applied and notified within %s; events by status:\n%s\njobs:\n%s",
				bound, r.statuses(), a.dumpJobs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: all applied %s after the fault, %s after the last acknowledgement", t.Name(),
		time.Since(fault).Round(100*time.Millisecond), time.Since(time.Unix(0, b.lastAck.Load())).Round(100*time.Millisecond))
	require.Equal(t, n, a.count(`SELECT count(*) FROM webhook_events`), "an acknowledged event is missing")
	require.Equal(t, n, a.count(`SELECT count(*) FROM payments`), "payments")
	require.Equal(t, n, a.count(`SELECT count(DISTINCT stripe_invoice_id) FROM payments`), "a payment applied twice")
	require.Equal(t, n, a.count(`SELECT count(*) FROM shipments`), "a shipment made twice")
	require.Equal(t, n, a.count(`SELECT count(*) FROM notifications`), "an e-mail owed twice")
}

func (r *faultRig) statuses() string {
	rows, err := r.app.db.Raw(`SELECT status, count(*) FROM webhook_events GROUP BY status`).Rows()
	require.NoError(r.t, err)
	defer rows.Close()
	var s strings.Builder
	for rows.Next() {
		var st string
		var n int
		require.NoError(r.t, rows.Scan(&st, &n))
		fmt.Fprintf(&s, "%s %d\n", st, n)
	}
	return s.String()
}

// killWhileWorking sends SIGKILL to p once it has jobs running, and returns the
// time of death and how many jobs it left running (they wait for the rescuer).
func (r *faultRig) killWhileWorking(p *faultProc) (time.Time, int64) {
	deadline := time.Now().Add(30 * time.Second)
	for r.app.count(`SELECT count(*) FROM river_job WHERE state = 'running'`) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	p.signal(syscall.SIGKILL)
	return time.Now(), r.app.count(`SELECT count(*) FROM river_job WHERE state = 'running'`)
}

// faultRecoveryBound is how soon the suite wants every event applied after a fault.
const faultRecoveryBound = jobsRecoveryBound

func TestFaultSIGKILLOfTheAPIProcess(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	p := r.start("serve", nil)
	var addr atomic.Value
	addr.Store(p.addr)
	b := r.newBurst(faultBurst)
	died := make(chan time.Time, 1)
	var stranded int64
	go func() {
		<-b.third
		var at time.Time
		at, stranded = r.killWhileWorking(p)
		died <- at
		q := r.start("serve", nil) // the orchestrator restarts it
		addr.Store(q.addr)
	}()
	b.send(t, func() []string { return []string{addr.Load().(string)} })
	r.assertAppliedOnce(b, <-died, faultRecoveryBound)
	require.Positive(t, stranded, "the process died with jobs running")
	t.Logf("the process died with %d jobs running", stranded)
}

func TestFaultSIGKILLOfTheWorkProcess(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	api := r.start("serve", map[string]string{"RUN_WORKERS": "false"})
	w := r.start("work", nil)
	b := r.newBurst(faultBurst)
	died := make(chan time.Time, 1)
	var stranded int64
	go func() {
		<-b.third
		var at time.Time
		at, stranded = r.killWhileWorking(w)
		died <- at
		r.start("work", nil)
	}()
	b.send(t, func() []string { return []string{api.addr} })
	require.True(t, api.ready(), "the API process kept serving")
	r.assertAppliedOnce(b, <-died, faultRecoveryBound)
	require.Positive(t, stranded, "the process died with jobs running")
	t.Logf("the process died with %d jobs running", stranded)
}

func TestFaultSIGTERMStopsCleanly(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	p := r.start("serve", nil)
	var addr atomic.Value
	addr.Store(p.addr)
	b := r.newBurst(faultBurst)
	stopped := make(chan time.Time, 1)
	code := make(chan int, 1)
	go func() {
		<-b.third
		p.signal(syscall.SIGTERM)
		code <- p.exitCode()
		stopped <- time.Now()
		q := r.start("serve", nil)
		addr.Store(q.addr)
	}()
	b.send(t, func() []string { return []string{addr.Load().(string)} })
	require.Equal(t, 0, <-code, "SIGTERM exits 0; log:\n%s", p.logText())
	require.Empty(t, p.errorLines(), "a clean stop logs no ERROR")
	r.assertAppliedOnce(b, <-stopped, faultRecoveryBound)
}

func TestFaultEveryDatabaseConnectionCut(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	p := r.start("serve", nil)
	b := r.newBurst(faultBurst)
	cut := make(chan time.Time, 1)
	go func() {
		<-b.third
		cut <- time.Now()
		// Every connection to the database is ended, the process's and the rig's.
		r.app.db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	}()
	b.send(t, func() []string { return []string{p.addr} })
	r.assertAppliedOnce(b, <-cut, faultRecoveryBound)
	require.True(t, p.ready(), "ready again without a restart")
}

// A deploy can stop a process right after it started: River's periodic enqueuer,
// stopped within its first second as leader, logged its cancelled context as an
// ERROR. SIGTERM then exits 0 and logs no ERROR.
func TestFaultSIGTERMRightAfterStartLogsNoError(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	for range 2 {
		p := r.start("serve", nil)
		p.signal(syscall.SIGTERM)
		require.Equal(t, 0, p.exitCode(), "log:\n%s", p.logText())
		require.Empty(t, p.errorLines())
	}
}

// relay is an SMTP relay for the suite: it accepts mail, or refuses every session
// (421), or hangs (accepts the connection and never answers). It records the
// Message-ID of every message it accepted.
type relay struct {
	addr string
	mode atomic.Int32 // relayOK, relayRefuse, relayHang
	mu   sync.Mutex
	ids  []string
}

const (
	relayOK int32 = iota
	relayRefuse
	relayHang
)

func newRelay(t *testing.T) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	r := &relay{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r
}

func (r *relay) serve(c net.Conn) {
	defer c.Close()
	switch r.mode.Load() {
	case relayRefuse:
		fmt.Fprint(c, "421 4.3.2 try again later\r\n")
		return
	case relayHang:
		_, _ = c.Read(make([]byte, 1)) // until the client gives up
		return
	}
	in := bufio.NewReader(c)
	fmt.Fprint(c, "220 relay.test ESMTP\r\n")
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			fmt.Fprint(c, "250 relay.test\r\n")
		case cmd == "DATA":
			fmt.Fprint(c, "354 go ahead\r\n")
			var id string
			for {
				l, err := in.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				if v, ok := strings.CutPrefix(l, "Message-ID: "); ok && id == "" {
					id = strings.TrimSpace(v)
				}
			}
			r.mu.Lock()
			r.ids = append(r.ids, id)
			r.mu.Unlock()
			fmt.Fprint(c, "250 2.0.0 queued\r\n")
		case cmd == "QUIT":
			fmt.Fprint(c, "221 bye\r\n")
			return
		default: // MAIL, RCPT, RSET, NOOP
			fmt.Fprint(c, "250 ok\r\n")
		}
	}
}

// received is how many messages the relay accepted, and how many distinct ones.
func (r *relay) received() (total, distinct int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, id := range r.ids {
		seen[id] = true
	}
	return len(r.ids), len(seen)
}

// testRelayFault runs a burst while the relay fails in mode for outage, then
// serves again: every customer gets each e-mail once, soon after the relay is back.
func testRelayFault(t *testing.T, mode int32) {
	r := newFaultRig(t)
	mail := newRelay(t)
	p := r.start("serve", map[string]string{"SMTP_URL": "smtp://" + mail.addr + "?from=box@brand.example"})
	const n = 60
	b := r.newBurst(n)
	back := make(chan time.Time, 1)
	go func() {
		<-b.third
		mail.mode.Store(mode)
		time.Sleep(5 * time.Second)
		mail.mode.Store(relayOK)
		back <- time.Now()
	}()
	b.send(t, func() []string { return []string{p.addr} })
	r.assertAppliedOnce(b, <-back, faultRecoveryBound)
	total, distinct := mail.received()
	require.Equal(t, n, distinct, "every notification e-mailed")
	require.Equal(t, n, total, "none e-mailed twice")
	require.True(t, p.ready(), "ready again without a restart")
}

func TestFaultSMTPRelayRefuses(t *testing.T) {
	t.Parallel()
	testRelayFault(t, relayRefuse)
}

func TestFaultSMTPRelayHangs(t *testing.T) {
	t.Parallel()
	testRelayFault(t, relayHang)
}

// The database goes away (every connection cut, none accepted: a power cut as the
// application sees it) for a few seconds and comes back: webhooks are answered 503
// meanwhile and re-sent, and the process serves again without a restart.
func TestFaultDatabaseDownAndBack(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	proxy, viaProxy := dbtest.NewProxy(t, r.dbURL)
	p := r.start("serve", map[string]string{"DATABASE_URL": viaProxy})
	r.databaseAwayThenBack(t, p, proxy.Stop, func() error { proxy.Start(t); return nil })
}

// databaseAwayThenBack takes the database away (stop) once a third of a burst is
// acknowledged, and brings it back (start) 5 s after the process stopped being ready:
// nothing acknowledged is lost, nothing is applied twice, the process is not ready
// while the database is away and is ready again without a restart.
func (r *faultRig) databaseAwayThenBack(t *testing.T, p *faultProc, stop func(), start func() error) {
	t.Helper()
	b := r.newBurst(faultBurst)
	back := make(chan time.Time, 1)
	var refused atomic.Bool
	go func() {
		<-b.third
		stop()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if !p.ready() {
				refused.Store(true)
				break
			}
		}
		time.Sleep(5 * time.Second)
		if err := start(); err != nil {
			t.Errorf("the database did not come back: %v", err)
		}
		back <- time.Now()
	}()
	b.send(t, func() []string { return []string{p.addr} })
	r.assertAppliedOnce(b, <-back, faultRecoveryBound)
	require.True(t, refused.Load(), "not ready while the database was away")
	require.Eventually(t, p.ready, 30*time.Second, 50*time.Millisecond, "ready again without a restart")
}

// stripeProxy stands in front of stripe-mock: it passes calls on, or answers 500, or
// holds them until the caller gives up (a timeout).
type stripeProxy struct {
	mode  atomic.Int32 // stripeOK, stripe500, stripeHang
	calls atomic.Int64
	url   string
}

const (
	stripeOK int32 = iota
	stripe500
	stripeHang
)

func newStripeProxy(t *testing.T) *stripeProxy {
	target, err := url.Parse(stripeMockURL(t))
	require.NoError(t, err)
	p := &stripeProxy{}
	pass := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		switch p.mode.Load() {
		case stripe500:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error":{"type":"api_error","message":"An unknown error occurred"}}`)
		case stripeHang:
			<-r.Context().Done()
		default:
			pass.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// testStripeFault sends invoice.paid events of subscriptions we do not have, each of
// which the job reads from Stripe before deciding it is not ours, while Stripe fails
// in mode for a while: every event is settled (none FAILED) soon after Stripe is
// back, and the process is ready throughout.
func testStripeFault(t *testing.T, mode int32) {
	r := newFaultRig(t)
	stripe := newStripeProxy(t)
	p := r.start("serve", map[string]string{"STRIPE_API_BASE": stripe.url})
	const n = 60
	b := &burst{third: make(chan struct{})}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range n {
		inv := webhooktest.Invoice{ID: "in_elsewhere_" + strconv.Itoa(i), Subscription: "sub_elsewhere_" + strconv.Itoa(i),
			Customer: "cus_elsewhere", Price: "price_elsewhere", Amount: 2400, Currency: "usd", PeriodStart: t0, PeriodEnd: t0.AddDate(0, 1, 0)}
		b.bodies = append(b.bodies, webhooktest.Event("evt_elsewhere_"+strconv.Itoa(i), "invoice.paid", t0, inv.Object(), nil))
	}
	back := make(chan time.Time, 1)
	go func() {
		<-b.third
		stripe.mode.Store(mode)
		time.Sleep(5 * time.Second)
		stripe.mode.Store(stripeOK)
		back <- time.Now()
	}()
	b.send(t, func() []string { return []string{p.addr} })
	up := <-back
	a := r.app
	for a.count(`SELECT count(*) FROM webhook_events WHERE status IN ('PROCESSED', 'IGNORED')`) != n {
		if time.Since(up) > faultRecoveryBound {
			t.Fatalf("not every event settled within %s of Stripe's return; events by status:\n%s\njobs:\n%s",
				faultRecoveryBound, r.statuses(), a.dumpJobs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: all settled %s after Stripe was back", t.Name(), time.Since(up).Round(100*time.Millisecond))
	require.Equal(t, int64(n), a.count(`SELECT count(*) FROM webhook_events`))
	require.Zero(t, a.count(`SELECT count(*) FROM payments`), "nothing of ours was paid")
	require.Greater(t, a.count(`SELECT count(*) FROM webhook_events WHERE attempts > 1`), int64(0), "the outage failed some attempts")
	require.True(t, p.ready(), "ready without a restart")
}

func TestFaultStripeAnswers500(t *testing.T) {
	t.Parallel()
	testStripeFault(t, stripe500)
}

func TestFaultStripeTimesOut(t *testing.T) {
	t.Parallel()
	testStripeFault(t, stripeHang)
}

// ownPostgres is a PostgreSQL cluster of the test's own, which it may stop as a
// power cut would (pg_ctl -m immediate: no shutdown checkpoint, crash recovery at
// the next start) without taking the shared one away from every other test. It
// keeps PostgreSQL's durable commit (synchronous_commit on), as production does;
// fsync is off, since the machine itself does not crash.
type ownPostgres struct {
	t          *testing.T
	bin, data  string
	log        string
	port       string
	credential *syscall.Credential // the cluster's owner when the test runs as root
}

// newOwnPostgres finds the server programs as scripts/lib.sh does (PATH, then
// /usr/lib/postgresql/*/bin), makes a cluster and starts it.
func newOwnPostgres(t *testing.T) *ownPostgres {
	bin := ""
	if p, err := exec.LookPath("initdb"); err == nil {
		bin = filepath.Dir(p)
	} else if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		slices.Sort(m)
		bin = filepath.Dir(m[len(m)-1])
	}
	require.NotEmpty(t, bin, "PostgreSQL server programs (initdb, pg_ctl) are needed: put them on PATH or install postgresql")
	dir, err := os.MkdirTemp("", "scoville-faults-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	pg := &ownPostgres{t: t, bin: bin, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "postgres.log")}
	if os.Geteuid() == 0 { // initdb refuses root: the cluster belongs to postgres
		u, err := user.Lookup("postgres")
		require.NoError(t, err, "running as root needs a postgres user to own the cluster")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		require.NoError(t, os.Chmod(dir, 0o711))
		require.NoError(t, os.Chown(dir, uid, gid))
	}
	require.NoError(t, pg.run("initdb", "-D", pg.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"))
	conf, err := os.OpenFile(filepath.Join(pg.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintf(conf, "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nmax_connections = 100\nfsync = off\n", dir)
	require.NoError(t, err)
	require.NoError(t, conf.Close())
	_, pg.port, _ = net.SplitHostPort(freeAddr(t))
	require.NoError(t, pg.start())
	t.Cleanup(pg.stopImmediately)
	return pg
}

// URL is the superuser URL of the cluster's postgres database.
func (pg *ownPostgres) URL() string {
	return "postgres://postgres@127.0.0.1:" + pg.port + "/postgres?sslmode=disable"
}

// run runs one of the server programs as the cluster's owner.
func (pg *ownPostgres) run(program string, args ...string) error {
	cmd := exec.Command(filepath.Join(pg.bin, program), args...)
	if pg.credential != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.credential}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(pg.log)
		return fmt.Errorf("%s: %w: %s\nserver log:\n%s", program, err, out, log)
	}
	return nil
}

func (pg *ownPostgres) start() error {
	return pg.run("pg_ctl", "-D", pg.data, "-l", pg.log, "-o", "-p "+pg.port, "-w", "-t", "60", "start")
}

// stopImmediately stops the server as a power cut would: every backend killed, no
// checkpoint; the next start replays the WAL.
func (pg *ownPostgres) stopImmediately() {
	cmd := exec.Command(filepath.Join(pg.bin, "pg_ctl"), "-D", pg.data, "-m", "immediate", "-w", "-t", "30", "stop")
	if pg.credential != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.credential}
	}
	_ = cmd.Run() // already stopped is fine
}

// PostgreSQL stopped as a power cut would (pg_ctl -m immediate) mid-burst and
// started again 5 s later: webhooks are answered 503 meanwhile and re-sent; nothing
// acknowledged is lost (a 200 is given only after the commit), and the process
// serves again without a restart.
func TestFaultPostgreSQLImmediateStop(t *testing.T) {
	t.Parallel()
	pg := newOwnPostgres(t)
	r := newFaultRigOn(t, pg.URL())
	p := r.start("serve", nil)
	r.databaseAwayThenBack(t, p, pg.stopImmediately, pg.start)
}

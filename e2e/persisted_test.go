package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/scoville/scoville/clients"
	"github.com/scoville/scoville/models"
)

// kitManifest is the client kit's committed persisted-documents manifest.
var kitManifest = filepath.Join("..", "clients", clients.ManifestPath)

// manifestDocument returns the hash and text of the manifest's operation name.
func manifestDocument(t *testing.T, name string) (string, string) {
	t.Helper()
	b, err := os.ReadFile(kitManifest)
	require.NoError(t, err)
	var m map[string]string
	require.NoError(t, json.Unmarshal(b, &m))
	for hash, text := range m {
		doc, err := parser.ParseQuery(&ast.Source{Input: text})
		require.NoError(t, err)
		if doc.Operations.ForName(name) != nil {
			return hash, text
		}
	}
	t.Fatalf("no operation %s in %s", name, kitManifest)
	return "", ""
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// persistedRequest sends a POST with any of query and hash (a persisted query),
// or, with get, the same as a GET.
func (a *testApp) persistedRequest(token, query, hash string, vars map[string]any, get bool) gqlResponse {
	a.t.Helper()
	body := map[string]any{}
	var ext string
	if hash != "" {
		ext = `{"persistedQuery":{"version":1,"sha256Hash":"` + hash + `"}}`
		body["extensions"] = json.RawMessage(ext)
	}
	if query != "" {
		body["query"] = query
	}
	if vars != nil {
		body["variables"] = vars
	}
	if get {
		v := url.Values{}
		if query != "" {
			v.Set("query", query)
		}
		if ext != "" {
			v.Set("extensions", ext)
		}
		if vars != nil {
			b, err := json.Marshal(vars)
			require.NoError(a.t, err)
			v.Set("variables", string(b))
		}
		return a.raw(limitsRequest{method: http.MethodGet, path: "/graphql?" + v.Encode(), token: token})
	}
	b, err := json.Marshal(body)
	require.NoError(a.t, err)
	return a.raw(limitsRequest{body: bytes.NewReader(b), token: token})
}

// Off (the default): any document runs, and Apollo's automatic persisted queries
// work as before: a hash the server does not know, the document with its hash,
// then the hash alone, over GET as over POST.
func TestPersistedDocumentsOffRunsAnyDocument(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{})
	a.seed()
	customer := a.token("persisted-off-customer")
	adHoc := `{ plans { id name } }`
	for who, token := range map[string]string{"anonymous": "", "customer": customer} {
		res := a.gql(token, adHoc, nil)
		require.Empty(t, res.Errors, "%s: %s", who, res.Raw)
		require.NotEmpty(t, res.Data["plans"], who)
	}

	query := `query OffApq { plans { id interval } }`
	hash := sha256Hex(query)
	res := a.persistedRequest(customer, "", hash, nil, true)
	require.Equal(t, []string{"PERSISTED_QUERY_NOT_FOUND"}, res.codes(), res.Raw)
	require.Equal(t, http.StatusOK, res.Status)
	res = a.persistedRequest(customer, query, hash, nil, false)
	require.Empty(t, res.Errors, res.Raw)
	require.NotEmpty(t, res.Data["plans"])
	for _, get := range []bool{true, false} {
		res = a.persistedRequest(customer, "", hash, nil, get)
		require.Empty(t, res.Errors, "hash hit (GET %v): %s", get, res.Raw)
		require.NotEmpty(t, res.Data["plans"])
	}
}

// On (PERSISTED_DOCUMENTS_MANIFEST set to the kit's manifest): anonymous callers
// and customers run the manifest's documents, by hash or whole, and nothing else:
// an ad-hoc document, a look-alike of a manifest document (whitespace, a comment,
// fields reordered), a manifest hash sent with another body, and a document
// registered as an automatic persisted query and replayed by its hash are all
// refused before anything runs. SUPPORT and ADMIN (the Playground) may send any
// document.
func TestPersistedDocumentsOnRunsOnlyTheManifest(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, appOptions{env: map[string]string{"PERSISTED_DOCUMENTS_MANIFEST": kitManifest}})
	a.seed()
	customer := a.token("persisted-on-customer")
	plansHash, plansText := manifestDocument(t, "Plans")
	meHash, _ := manifestDocument(t, "Me")

	// The manifest's documents run: by hash over GET and POST, and whole.
	for _, get := range []bool{true, false} {
		for who, token := range map[string]string{"anonymous": "", "customer": customer} {
			res := a.persistedRequest(token, "", plansHash, nil, get)
			require.Empty(t, res.Errors, "%s by hash (GET %v): %s", who, get, res.Raw)
			require.NotEmpty(t, res.Data["plans"])
		}
	}
	res := a.gql(customer, plansText, nil)
	require.Empty(t, res.Errors, res.Raw)
	require.NotEmpty(t, res.Data["plans"])
	res = a.persistedRequest(customer, plansText, plansHash, nil, false)
	require.Empty(t, res.Errors, "the whole document with its hash: %s", res.Raw)
	res = a.persistedRequest(customer, "", meHash, nil, false)
	require.Empty(t, res.Errors, res.Raw)
	require.Equal(t, "persisted-on-customer@example.com", res.Data["me"].(map[string]any)["email"])

	requireRefused := func(res gqlResponse, how string) {
		t.Helper()
		require.Equal(t, []string{models.CodeDocumentNotAllowed}, res.codes(), "%s: %s", how, res.Raw)
		require.Equal(t, http.StatusOK, res.Status, "%s: a request error, 200 under application/json", how)
		require.Nil(t, res.Data, how)
		require.NotContains(t, res.Raw, `"data"`, how)
	}
	lookAlikes := map[string]string{
		"ad hoc":             `{ plans { id name } }`,
		"trailing space":     plansText + " ",
		"leading newline":    "\n" + plansText,
		"a comment":          plansText + " # just a comment",
		"fields reordered":   strings.Replace(plansText, "description id", "id description", 1),
		"another operation":  `query Plans { me { email } }`,
		"introspection":      `{ __schema { types { name } } }`,
		"typename only":      `{ __typename }`,
		"manifest plus more": plansText + " query Extra { plans { id } }",
	}
	for name, doc := range lookAlikes {
		require.NotEqual(t, plansHash, sha256Hex(doc), name)
		for who, token := range map[string]string{"anonymous": "", "customer": customer} {
			requireRefused(a.gql(token, doc, nil), who+": "+name)
			requireRefused(a.persistedRequest(token, doc, "", nil, true), who+" over GET: "+name)
		}
	}

	// A manifest hash with another body: the persisted-query check refuses the pair.
	res = a.persistedRequest(customer, lookAlikes["ad hoc"], plansHash, nil, false)
	require.NotEmpty(t, res.Errors, res.Raw)
	require.Nil(t, res.Data, res.Raw)

	// An ad-hoc document registered with its own hash is refused, and so is its hash.
	adHocHash := sha256Hex(lookAlikes["ad hoc"])
	requireRefused(a.persistedRequest(customer, lookAlikes["ad hoc"], adHocHash, nil, false), "registered as a persisted query")
	requireRefused(a.persistedRequest(customer, "", adHocHash, nil, true), "its hash replayed")
	requireRefused(a.persistedRequest("", "", adHocHash, nil, false), "its hash replayed anonymously")

	// Staff may send any document, whole or as an automatic persisted query.
	for _, role := range []string{"support", "admin"} {
		staff := a.token("persisted-on-"+role, role)
		res := a.gql(staff, `{ adminCustomers(first: 5) { edges { node { id } } } }`, nil)
		require.Empty(t, res.Errors, "%s: %s", role, res.Raw)
		query := `query StaffAdHoc` + role + ` { plans { id } }`
		res = a.persistedRequest(staff, query, sha256Hex(query), nil, false)
		require.Empty(t, res.Errors, "%s registers: %s", role, res.Raw)
		res = a.persistedRequest(staff, "", sha256Hex(query), nil, true)
		require.Empty(t, res.Errors, "%s replays: %s", role, res.Raw)
		// ...but a customer cannot replay what staff registered.
		requireRefused(a.persistedRequest(customer, "", sha256Hex(query), nil, true), "staff's persisted query replayed by a customer")
	}
	require.EqualValues(t, 1, a.customerRows("persisted-on-customer"), "the manifest's Me created the customer")
}

// Over WebSocket too: a customer's live operation runs only when it is the
// manifest's SubscriptionUpdated, sent whole or by hash.
func TestPersistedDocumentsOnLiveOperations(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PERSISTED_DOCUMENTS_MANIFEST": kitManifest}
	for k, v := range liveEnv {
		env[k] = v
	}
	a := newTestApp(t, appOptions{jobs: true, env: env})
	f := a.liveFixture("persisted_live", "persisted-live-owner")
	hash, text := manifestDocument(t, "SubscriptionUpdated")
	c := a.connect(a.token("persisted-live-owner"))

	c.subscribe("adhoc", followQuery, map[string]any{"id": f.subscriptionID})
	codes, _ := c.refusal("adhoc")
	require.Equal(t, []string{models.CodeDocumentNotAllowed}, codes)
	done := c.next()
	require.Equal(t, "complete", done.Type, "the refused operation ends")
	require.Equal(t, "adhoc", done.ID)

	c.subscribe("whole", text, map[string]any{"id": f.subscriptionID})
	require.Equal(t, "ACTIVE", c.push("whole").Data.SubscriptionUpdated.Status)

	c.send(map[string]any{"type": "subscribe", "id": "hash", "payload": map[string]any{
		"query": "", "variables": map[string]any{"id": f.subscriptionID},
		"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}},
	}})
	m := c.next()
	for m.ID == "whole" { // another push of the first operation
		m = c.next()
	}
	require.Equal(t, "hash", m.ID)
	require.Equal(t, "next", m.Type, "%s", m.Payload)
	var p livePush
	require.NoError(t, json.Unmarshal(m.Payload, &p))
	require.Empty(t, p.Errors, "%s", m.Payload)
	require.Equal(t, f.subscriptionID, p.Data.SubscriptionUpdated.ID)
}

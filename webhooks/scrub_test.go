package webhooks

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

const stripeEvent = `{"id":"evt_1","type":"invoice.paid","data":{"object":{
	"id":"in_1","object":"invoice","customer":"cus_erin","amount_paid":2400,"total":2400,
	"customer_email":"Erin@Example.org","customer_name":"Erin Erasable",
	"customer_address":{"line1":"42 Forgetme Street","city":"Erasetown","country":"DE"},
	"customer_shipping":{"name":"Erin Erasable","address":{"line1":"42 Forgetme Street"}},
	"description":"Box for Erin Erasable <erin@example.org>",
	"lines":{"data":[{"id":"il_1","amount":2400,"price":{"id":"price_1","unit_amount":2400}}]},
	"charge":{"id":"ch_1","billing_details":{"email":"erin@example.org","name":"Erin Erasable","phone":"+49 30 1234567"}}}}}`

func TestScrubPayloadKeepsWhatHappenedAndDropsWho(t *testing.T) {
	t.Parallel()
	out := scrubPayload([]byte(stripeEvent))
	s := string(out)
	for _, gone := range []string{"erin@example.org", "Erin@Example.org", "Erin Erasable", "42 Forgetme Street", "Erasetown", "+49 30"} {
		require.NotContains(t, s, gone)
	}
	var tree map[string]any
	require.NoError(t, json.Unmarshal(out, &tree))
	obj := tree["data"].(map[string]any)["object"].(map[string]any)
	require.Equal(t, "in_1", obj["id"])
	require.Equal(t, "cus_erin", obj["customer"])
	require.EqualValues(t, 2400, obj["amount_paid"])
	require.Nil(t, obj["customer_email"])
	require.Nil(t, obj["description"], "the object's own free text may quote the person")
	require.Equal(t, true, tree["erased"])
	require.Equal(t, string(out), string(scrubPayload(out)), "scrubbing again changes nothing")

	require.JSONEq(t, `{"erased":true}`, string(scrubPayload([]byte("not json"))))
}

// A customer named like a JSON key or a Stripe type is erased by path: their own
// events keep every key and value that is not personal, so they still apply.
func TestScrubPayloadLeavesWhatIsNotPersonal(t *testing.T) {
	t.Parallel()
	ev := `{"id":"evt_2","object":"event","type":"customer.subscription.updated","data":{"object":{
		"id":"sub_1","object":"subscription","customer":"cus_sub","status":"active",
		"description":"subscription for subscription","metadata":{"scoville_customer_id":"c1","name":"kept"},
		"items":{"object":"list","data":[{"id":"si_1","object":"subscription_item","price":{"id":"price_1","object":"price","unit_amount":2400}}]}},
		"previous_attributes":{"status":"incomplete","shipping":{"name":"subscription"}}}}`
	var tree map[string]any
	require.NoError(t, json.Unmarshal(scrubPayload([]byte(ev)), &tree))
	data := tree["data"].(map[string]any)
	obj := data["object"].(map[string]any)
	require.Equal(t, "subscription", obj["object"])
	require.Equal(t, "active", obj["status"])
	require.Nil(t, obj["description"])
	require.Equal(t, map[string]any{"scoville_customer_id": "c1", "name": "kept"}, obj["metadata"], "metadata holds our ids")
	item := obj["items"].(map[string]any)["data"].([]any)[0].(map[string]any)
	require.Equal(t, "subscription_item", item["object"])
	require.EqualValues(t, 2400, item["price"].(map[string]any)["unit_amount"])
	prev := data["previous_attributes"].(map[string]any)
	require.Equal(t, "incomplete", prev["status"])
	require.Nil(t, prev["shipping"])
	require.Equal(t, "customer.subscription.updated", tree["type"])
}

package gateway

// MockBase is mockBase for the external tests (package gateway_test).
var MockBase = mockBase

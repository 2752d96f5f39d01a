package main

// Default addresses. Every role listens on ports of its own, so that the whole
// stack runs on one machine with no flags but keys, and every flag that dials a
// role defaults to that role's listen address (README.md has the table; the
// runner in sim lays hosts out on the same ports).
const (
	defGateway      = "127.0.0.1:7000" // client port (public)
	defGatewayAdmin = "127.0.0.1:7001"
	defGatewayLink  = "127.0.0.1:7002" // router pushes, control drains
	defIpconf       = "127.0.0.1:7100" // public HTTP: GET /v1/gateways
	defIpconfAdmin  = "127.0.0.1:7101"
	defState        = "127.0.0.1:7200"
	defStateAdmin   = "127.0.0.1:7201"
	defRouter       = "127.0.0.1:7300"
	defRouterAdmin  = "127.0.0.1:7301"
	defMsg          = "127.0.0.1:7400"
	defMsgAdmin     = "127.0.0.1:7401"
	defControl      = "127.0.0.1:7500" // the control API
	defControlAdmin = "127.0.0.1:7501"
)

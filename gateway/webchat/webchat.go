// Package webchat is the browser chat client a gateway serves at GET /chat on
// its WebSocket port (PROTOCOL.md §2.1): one self-contained HTML page, its
// style and script inline, that speaks the client protocol in binary WebSocket
// messages — LOGIN with a token, heartbeat PINGs, SEND with its SEND_ACK or
// ERROR, PUSH and PUSH_ACK by the receive rule, SYNC after every LOGIN_OK, and
// reconnection with backoff after a KICK unless the kick forbids it.
//
// The page reads its inputs from the query string:
//
//	?uid=N&token=T[&ws=ws://host:port/]
//
// where the token is one minted for uid N (floodgate token -uid N) and ws
// defaults to the page's own host. With
//
//	?selftest=1&a=UID&ta=TOKEN&b=UID&tb=TOKEN[&ws=…]
//
// it runs two sessions in the one page instead: A sends to B, B replies, and
// window.headlessDone resolves to a summary of what each received
// ("a→b: hello from A | b→a: hello from B"), which the page also shows. The
// package's browser test drives that mode against a real gateway.
package webchat

import _ "embed"

// page is chat.html; a string, so that nobody can change it in place.
//
//go:embed chat.html
var page string

// Page returns the chat page's bytes (text/html; charset=utf-8), a fresh copy
// the caller may keep or modify.
func Page() []byte { return []byte(page) }

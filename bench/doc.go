// Package bench is Floodgate's reactor benchmark: `make bench` runs Floodgate's echo
// gateway and three comparison echo servers (netstd, gnet v2, nbio; see bench/peers)
// side by side on one machine under the same load, and writes
// reports/out/bench/reactor.json (a contract: fields may be added, never renamed) and
// reactor.md. A fifth server, floodgate-ws, is the same echo gateway reached over its
// WebSocket port (-ws-listen, gateway/proto/PROTOCOL.md §2.1), so that the memory of
// an idle WebSocket connection sits beside that of an idle raw TCP one.
//
// # Tests
//
//   - idle: N connections that never send (50k and 100k by default). A process holds
//     fewer than 20k sockets here (RLIMIT_NOFILE), so each server runs as K processes,
//     each on its own port, and the load as K client processes, each on its own source
//     address. Per server process the harness reads VmRSS (/proc/PID/status, once it
//     stops changing) and the live Go heap (GET /debug/memstats, which collects first),
//     empty and loaded; rss_bytes_per_conn is Σ(loaded−empty)/N, likewise the heap.
//     floodgate-ws is measured the same way; its clients send the opening handshake
//     (a fixed request, a random Sec-WebSocket-Key) and a connection counts in N once
//     the 101 has arrived. reactor.md shows its row beside floodgate's, with the
//     ratio, and the goal "within 2× of raw TCP". floodgate-ws runs this test only:
//     its load client holds connections and sends nothing, and the harness logs that
//     it skips the others.
//   - echo: closed loop, one message in flight per connection, for a fixed warm-up and
//     measurement window. msg_bytes is the whole frame on the wire, its 5-byte header
//     included. RTT goes to an HdrHistogram per client process; the harness merges
//     them. server_cpu_us_per_msg is the server's utime+stime over the window per
//     echoed message: unlike msgs/s it is not diluted by the load client, which shares
//     the machine's cores; it is split into user (the server's code) and system time.
//     Floodgate runs with both EPOLLOUT strategies (-write-readiness dynamic, always).
//   - pipelined: Floodgate only, both EPOLLOUT strategies, a few connections with many
//     messages in flight through small socket buffers (the server's SO_SNDBUF, the
//     clients' SO_RCVBUF), so that writes hit EAGAIN and the outbound queue and the
//     EPOLLOUT path actually run (plain echo never queues).
//
// Echo and pipelined run in rounds, each round cycling through every server, and a
// row reports its median round. Before each case the harness waits (bounded) for the
// machine to be nearly idle, and each echo row records the CPU spent by anything
// else during its window (other_cpu_cores): two cores shared with a build measure the
// build.
//
// # Load client
//
// The load client is written once, on Floodgate's own reactor in client mode
// (reactor.Config.Addr empty, Reactor.Dial), with one epoller so that its handler needs
// no locks. The harness runs it as child processes through the internal subcommand
// `floodgate bench client` and talks to each over stdin/stdout, one JSON object a line:
//
//	client → {"connect":{"established":N,"failed":F,...}}      once every dial has settled
//	harness → {"cmd":"echo","msg_bytes":64,"depth":1,"warmup_ms":2000,"measure_ms":8000}
//	client → {"echo":{"measured":M,...,"hist":{HdrHistogram snapshot}}}
//	harness → {"cmd":"stop"} (or end of input): the client closes its connections and exits
//
// That subcommand is an implementation detail of the harness, not a user interface.
//
// # Processes
//
// Children run in their own process groups (a terminal's Ctrl-C reaches the harness
// only, which then stops them in order) with PDEATHSIG=SIGKILL (they die with the
// harness even if it is killed). Stopping is SIGTERM, then SIGKILL after a grace period.
// Every wait is bounded in time and every loop in count.
package bench

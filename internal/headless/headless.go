// Package headless opens a page in headless Chromium (Debian's chromium) and
// reports what went wrong in it: uncaught exceptions, console.error calls,
// resources that failed to load and images that did not render. It needs no
// DevTools client: the test server it starts injects a probe script into every
// HTML page it serves, and the probe posts its findings back to that server when
// the page's load event fires.
//
// A page that keeps working after load (one that talks to a server, say) sets
// window.headlessDone to a Promise while it loads; the probe then reports once
// that promise settles: its resolved value becomes Result.Value, a rejection one
// of Result.Errors.
package headless

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EnvRequire names the variable that turns a missing chromium from a skip into a
// failure (CI sets it to 1 after installing chromium).
const EnvRequire = "FLOODGATE_REQUIRE_CHROMIUM"

// Image is one <img> of the page as the browser saw it after load.
type Image struct {
	Src    string `json:"src"`
	Loaded bool   `json:"loaded"` // complete && naturalWidth > 0
}

// Result is what the probe found on a page.
type Result struct {
	// Errors are uncaught exceptions, unhandled rejections, console.error calls
	// and resources (images, scripts, styles) that failed to load, in order.
	Errors []string `json:"errors"`
	Images []Image  `json:"images"`
	// Value is what window.headlessDone resolved to, as String(value); empty
	// when the page set no promise or it rejected.
	Value string `json:"value"`
}

// Broken returns the sources of the images that did not render.
func (r Result) Broken() []string {
	var out []string
	for _, im := range r.Images {
		if !im.Loaded {
			out = append(out, im.Src)
		}
	}
	return out
}

// Problems returns every finding as one line each: the errors, then the broken
// images. Empty means the page loaded cleanly.
func (r Result) Problems() []string {
	out := append([]string(nil), r.Errors...)
	for _, src := range r.Broken() {
		out = append(out, "image did not load: "+src)
	}
	return out
}

// probePath is where the probe posts its Result on the test server.
const probePath = "/__headless_probe"

// probe is injected first into <head>, so it is listening before any of the
// page's own scripts run. A resource's error event does not bubble, hence the
// capture-phase listener. The report waits one task after load, so that the
// rejections of promises that settled during load have been dispatched
// (Chromium queues unhandledrejection as a task). It is sent with a synchronous XHR, so it has
// reached the server before the browser can exit.
//
// window.headlessDone is an accessor the probe defines: the moment the page
// assigns a thenable, the probe attaches its handlers, so a promise that rejects
// early is a handled rejection (reported once, as a rejection of headlessDone,
// not also as an unhandled one). The report then waits for it to settle.
const probe = `<script>(function(){
var errs=[],done=null,settled=false,value='';
window.addEventListener('error',function(e){
 var t=e.target;
 if(t&&t!==window&&t.tagName){errs.push('resource failed to load: <'+t.tagName.toLowerCase()+'> '+(t.currentSrc||t.src||t.href||''));return;}
 errs.push('uncaught: '+(e.message||String(e.error))+' at '+(e.filename||'')+':'+(e.lineno||0));
},true);
window.addEventListener('unhandledrejection',function(e){errs.push('unhandled rejection: '+String(e.reason));});
var ce=console.error;
console.error=function(){errs.push('console.error: '+Array.prototype.map.call(arguments,String).join(' '));return ce.apply(console,arguments);};
var waiters=[];
function settle(){settled=true;waiters.forEach(function(f){f();});waiters=[];}
Object.defineProperty(window,'headlessDone',{configurable:true,get:function(){return done;},set:function(p){
 done=p;settled=false;
 if(!p||typeof p.then!=='function'){errs.push('window.headlessDone is not a Promise: '+String(p));settle();return;}
 p.then(function(v){if(done===p){value=String(v);settle();}},function(r){if(done===p){errs.push('headlessDone rejected: '+String(r));settle();}});
}});
window.addEventListener('load',function(){setTimeout(function(){
 if(done===null||settled){report();return;}
 waiters.push(report);
},0);});
var sent=false;
function report(){
 if(sent)return;sent=true;
 var imgs=Array.prototype.map.call(document.images,function(i){return {src:i.getAttribute('src')||'',loaded:i.complete&&i.naturalWidth>0};});
 var x=new XMLHttpRequest();x.open('POST','` + probePath + `',false);
 x.setRequestHeader('Content-Type','application/json');
 x.send(JSON.stringify({errors:errs,images:imgs,value:value}));
}
})();</script>`

// inject returns page with the probe inserted right after <head> (or at the
// start when the page has no head tag).
func inject(page []byte) []byte {
	i := bytes.Index(bytes.ToLower(page), []byte("<head"))
	if i < 0 {
		return append([]byte(probe), page...)
	}
	j := bytes.IndexByte(page[i:], '>')
	if j < 0 {
		return append([]byte(probe), page...)
	}
	at := i + j + 1
	out := make([]byte, 0, len(page)+len(probe))
	out = append(out, page[:at]...)
	out = append(out, probe...)
	return append(out, page[at:]...)
}

// Binary returns chromium's path. Without it the test is skipped, unless
// FLOODGATE_REQUIRE_CHROMIUM=1, where it fails.
func Binary(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("chromium not found and %s=1 (install the Debian package chromium)", EnvRequire)
	}
	t.Skipf("chromium not installed; .ci/run installs it (Debian package chromium); set %s=1 to fail instead", EnvRequire)
	return ""
}

// Open serves dir on a loopback test server, opens page (a path under dir, such
// as "index.html", optionally with a query) in headless Chromium and returns what
// the probe found: after the load event, or once window.headlessDone settled if
// the page set it. It fails the test if the browser does not report within
// timeout (a headlessDone that never settles included); the browser and every
// process it started are killed when Open returns.
func Open(t testing.TB, dir, page string, timeout time.Duration) Result {
	t.Helper()
	bin := Binary(t)
	results := make(chan Result, 1)
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == probePath {
			var res Result
			if err := json.NewDecoder(r.Body).Decode(&res); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			select {
			case results <- res:
			default: // a second load event (a reload): the first report stands
			}
			return
		}
		if strings.HasSuffix(r.URL.Path, ".html") {
			b, err := os.ReadFile(path.Join(dir, path.Clean("/"+r.URL.Path)))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(inject(b)) //nolint:errcheck
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Real time, and no exit of its own: the browser stays on the page until the
	// probe has reported and Open kills it. --virtual-time-budget would run the
	// page's timers ahead of its WebSocket traffic (an open socket does not hold
	// virtual time back, a pending fetch does), and --dump-dom would exit once
	// that budget is spent, before a page waiting on a server has finished.
	cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
		"--user-data-dir="+t.TempDir(), srv.URL+"/"+strings.TrimPrefix(page, "/"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	// Kill the whole group: chromium's renderers and helpers with it.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	// exited is closed once chromium has been reaped, waitErr set before: both the
	// select below and the deferred wait receive from it.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		cancel()
		<-exited
	}()
	select {
	case res := <-results:
		return res
	case <-exited:
		select { // the report may have arrived just before the exit
		case res := <-results:
			return res
		default:
		}
		t.Fatalf("chromium exited (%v) before the page reported; stderr:\n%s", waitErr, tail(stderr.String(), 2000))
	case <-ctx.Done():
		t.Fatalf("page did not report within %v (not loaded, or window.headlessDone still pending)", timeout)
	}
	return Result{}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

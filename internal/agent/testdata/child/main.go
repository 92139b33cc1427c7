// child is the app the agent tests supervise. Its version is set with -ldflags -X main.version.
//
//	PORT          serve on 127.0.0.1:PORT: GET / → version, GET /args → its arguments,
//	              GET /healthz → HEALTH (a status code, default 200)
//	CRASH=N       print "boom" to stderr and exit with code N at once
//	EXIT_ON_TERM  exit code after SIGTERM (default 0)
//	DRAIN=D       on SIGTERM keep serving for the duration D, then exit (a load balancer's drain)
//	HOLD_CHILD=P  start a child (its own copy, HOLD=P) that serves its pid on 127.0.0.1:P and
//	              ignores SIGTERM, as a worker that outlives its parent would
//	ORPHAN=1      start a grandchild that outlives this process by 200 ms, then exit 0: the
//	              grandchild is reparented to PID 1 (the agent), which must reap it
//	SLEEPY=1      (the grandchild) sleep 200 ms and exit
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var version = "dev"

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	if os.Getenv("SLEEPY") == "1" {
		time.Sleep(200 * time.Millisecond)
		return
	}
	if p := os.Getenv("HOLD"); p != "" {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		serve(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, os.Getpid()) }))
		select {}
	}
	fmt.Println("started", version)
	if os.Getenv("ORPHAN") == "1" {
		p, err := os.StartProcess("/proc/self/exe", []string{"sleepy"}, &os.ProcAttr{Env: []string{"SLEEPY=1"}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("orphaned", p.Pid)
		os.Exit(0)
	}
	if c := os.Getenv("CRASH"); c != "" {
		n, _ := strconv.Atoi(c)
		fmt.Fprintln(os.Stderr, "boom")
		os.Exit(n)
	}
	if p := os.Getenv("HOLD_CHILD"); p != "" {
		c, err := os.StartProcess("/proc/self/exe", []string{"holder"}, &os.ProcAttr{Env: []string{"HOLD=" + p},
			Files: []*os.File{nil, os.Stdout, os.Stderr}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("holder", c.Pid)
	}
	if p := os.Getenv("PORT"); p != "" {
		health, _ := strconv.Atoi(os.Getenv("HEALTH"))
		serve(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/args":
				fmt.Fprint(w, strings.Join(os.Args[1:], " "))
			case "/healthz":
				if health != 0 {
					w.WriteHeader(health)
				}
			default:
				fmt.Fprint(w, version)
			}
		}))
	}
	for sig := range sigs {
		fmt.Println("got", sig)
		if sig == syscall.SIGHUP {
			continue
		}
		if d, err := time.ParseDuration(os.Getenv("DRAIN")); err == nil && sig == syscall.SIGTERM {
			time.Sleep(d)
		}
		code, _ := strconv.Atoi(os.Getenv("EXIT_ON_TERM"))
		os.Exit(code)
	}
}

func serve(port string, h http.Handler) {
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(ln, h)
}

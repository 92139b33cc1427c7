// hello is the example service of hotpod: an HTTP server that says who it is. Edit the greeting
// while `hotpod dev` runs and the next request gets the new text.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const greeting = "hello from hotpod"

// called is when the last edit was made; `hotpod bench` rewrites it before each build so the app
// can say how long after the edit it came up.
var called = time.Unix(0, 0)

func main() {
	addr := ":8080"
	if p := os.Getenv("PORT"); p != "" {
		addr = ":" + p
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, greeting)
	})
	mux.HandleFunc("/called", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, called.UnixNano())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	// Shut down promptly on SIGTERM: a Go server as PID 1 would otherwise ignore it.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	if called.UnixNano() > 0 {
		log.Printf("hello listening on %s, %.1f ms after the edit", addr, float64(time.Since(called).Microseconds())/1000)
	} else {
		log.Printf("hello listening on %s", addr)
	}
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

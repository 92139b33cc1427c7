package agent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
)

// maxPatch bounds an update's body: the largest binary plus its header.
const maxPatch = delta.MaxTarget + delta.HeaderLen

// Timeouts of the control API's connections.
const (
	// BodyStall fails an upload that sends nothing for this long: its new file is removed and
	// the handler ends (no lock is held meanwhile anyway).
	BodyStall = 30 * time.Second
	// writeStall drops a client that takes nothing of a stream for this long.
	writeStall = 30 * time.Second
	// ReadHeaderTimeout and IdleTimeout are the server's (see NewServer).
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 2 * time.Minute
)

// bodyStall is BodyStall; tests shorten it.
var bodyStall = BodyStall

// NewServer is the control API's HTTP server for s: Handler with the connection timeouts. There
// is no overall read or write timeout: an update's body may take minutes on a slow link and the
// event and log streams last the session; bodies are bounded by BodyStall instead.
func NewServer(s *Supervisor, token string) *http.Server {
	return &http.Server{Handler: Handler(s, token), ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: IdleTimeout}
}

// Handler serves the control API of s. Every request must carry token.
func Handler(s *Supervisor, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+agentapi.PathStatus, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("POST "+agentapi.PathUpdate, func(w http.ResponseWriter, r *http.Request) {
		p, err := agentapi.ParseUpdateParams(r.URL.Query())
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if r.ContentLength > maxPatch {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("patch of %d bytes is larger than any binary may be", r.ContentLength))
			return
		}
		res, err := s.Update(p, stallReader(w, r))
		answer(w, res, err)
	})
	mux.HandleFunc("POST "+agentapi.PathRestart, func(w http.ResponseWriter, r *http.Request) {
		p, err := agentapi.ParseUpdateParams(r.URL.Query())
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		res, err := s.Restart(p)
		answer(w, res, err)
	})
	mux.HandleFunc("PUT "+agentapi.PathFiles+"{path...}", func(w http.ResponseWriter, r *http.Request) {
		sum, err := delta.ParseHash(r.URL.Query().Get("sha256"))
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("sha256=: %w", err))
			return
		}
		if r.ContentLength > MaxFile {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("file of %d bytes is larger than %d", r.ContentLength, int64(MaxFile)))
			return
		}
		answer(w, struct{}{}, s.PutFile(r.PathValue("path"), sum, stallReader(w, r)))
	})
	mux.HandleFunc("DELETE "+agentapi.PathFiles+"{path...}", func(w http.ResponseWriter, r *http.Request) {
		answer(w, struct{}{}, s.DeleteFile(r.PathValue("path")))
	})
	mux.HandleFunc("PUT "+agentapi.PathDebugDelve, func(w http.ResponseWriter, r *http.Request) {
		sum, err := delta.ParseHash(r.URL.Query().Get("sha256"))
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("sha256=: %w", err))
			return
		}
		p, err := agentapi.ParseUpdateParams(r.URL.Query())
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if r.ContentLength > MaxFile {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("dlv of %d bytes is larger than %d", r.ContentLength, int64(MaxFile)))
			return
		}
		res, err := s.PutDelve(sum, stallReader(w, r), p)
		answer(w, res, err)
	})
	mux.HandleFunc("GET "+agentapi.PathDebugConnect, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), agentapi.DebugUpgrade) {
			writeError(w, http.StatusBadRequest, fmt.Errorf("%s needs Connection: Upgrade and Upgrade: %s", agentapi.PathDebugConnect, agentapi.DebugUpgrade))
			return
		}
		dlv, err := s.DebugConn()
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err)
			return
		}
		defer dlv.Close()
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Time{}) // a debug session idles for as long as it likes
		if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+agentapi.DebugUpgrade+"\r\n\r\n"); err != nil {
			return
		}
		s.serveDebug(conn, brw.Reader, dlv)
	})
	mux.HandleFunc("GET "+agentapi.PathEvents, func(w http.ResponseWriter, r *http.Request) {
		events, stop := s.Subscribe()
		defer stop()
		stream(w, r, events, func(e agentapi.Event) []byte {
			b, _ := json.Marshal(e)
			return append(b, '\n')
		})
	})
	mux.HandleFunc("GET "+agentapi.PathLogs, func(w http.ResponseWriter, r *http.Request) {
		lines, stop := s.Logs()
		defer stop()
		stream(w, r, lines, func(b []byte) []byte { return b })
	})
	return authenticate(token, mux)
}

// answer writes v, or the status err's kind calls for: every handler's errors are the
// supervisor's sentinels, each with one meaning on the wire (docs/architecture.md's table).
func answer(w http.ResponseWriter, v any, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, v)
		return
	}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, delta.ErrWrongBase): // before ErrBadPatch, which wraps it too
		code = http.StatusConflict
	case errors.Is(err, ErrBadPatch), errors.Is(err, ErrBadFile):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNoSpace):
		code = http.StatusInsufficientStorage
	case errors.Is(err, ErrShuttingDown):
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrNoSyncDir), errors.Is(err, ErrNoDebug):
		code = http.StatusNotFound
	case errors.Is(err, ErrEscape):
		code = http.StatusForbidden
	}
	writeError(w, code, err)
}

// stallReader is r's body with a read deadline pushed forward on every read: a body that sends
// nothing for BodyStall fails.
func stallReader(w http.ResponseWriter, r *http.Request) io.Reader {
	rc := http.NewResponseController(w)
	return readerFunc(func(p []byte) (int, error) {
		_ = rc.SetReadDeadline(time.Now().Add(bodyStall))
		return r.Body.Read(p)
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// authenticate answers a request without the session token 401 at once, without reading its
// body, and closes its connection: nothing of it is kept.
func authenticate(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get(agentapi.TokenHeader))
		if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusUnauthorized, errors.New("wrong or missing session token: the agent was started by another hotpod session"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func stream[T any](w http.ResponseWriter, r *http.Request, c <-chan T, encode func(T) []byte) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case v := <-c:
			_ = rc.SetWriteDeadline(time.Now().Add(writeStall))
			if _, err := w.Write(encode(v)); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, agentapi.Error{Error: err.Error()})
}

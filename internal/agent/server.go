package agent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
)

// maxPatch bounds an update's body: the largest binary plus its header.
const maxPatch = delta.MaxTarget + delta.HeaderLen

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
		res, err := s.Update(p, r.Body)
		switch {
		case errors.Is(err, delta.ErrWrongBase):
			writeError(w, http.StatusConflict, err)
		case errors.Is(err, ErrBadPatch):
			writeError(w, http.StatusBadRequest, err)
		case errors.Is(err, ErrNoSpace):
			writeError(w, http.StatusInsufficientStorage, err)
		case err != nil:
			writeError(w, http.StatusInternalServerError, err)
		default:
			writeJSON(w, http.StatusOK, res)
		}
	})
	mux.HandleFunc("POST "+agentapi.PathRestart, func(w http.ResponseWriter, r *http.Request) {
		p, err := agentapi.ParseUpdateParams(r.URL.Query())
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		res, err := s.Restart(p)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
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

func authenticate(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get(agentapi.TokenHeader))
		if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
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

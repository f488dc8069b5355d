package main

// Structured logs on stderr in the runtime's two formats (libs/runtime/maas_runtime/logs.py), so the gateway's
// lines read like every other server's: json (containers) or text (local runs, .run/logs/<name>.log).
//
//	{"ts": "2024-05-01T12:00:00.123Z", "level": "INFO", "logger": "maas.access", "msg": "rpc", "request_id": "...", ...}
//	2024-05-01 12:00:00,123 INFO  maas.access [req-id] rpc method=/pkg.Svc/Call code=OK ms=0.41

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

const (
	levelDebug    = 10
	levelInfo     = 20
	levelWarning  = 30
	levelError    = 40
	levelCritical = 50
)

var levelNames = map[int]string{levelDebug: "DEBUG", levelInfo: "INFO", levelWarning: "WARNING",
	levelError: "ERROR", levelCritical: "CRITICAL"}

func parseLevel(name string) int {
	switch name {
	case "DEBUG":
		return levelDebug
	case "WARNING", "WARN":
		return levelWarning
	case "ERROR":
		return levelError
	case "CRITICAL":
		return levelCritical
	}
	return levelInfo
}

// Logger writes one line per event; fields are key, value pairs kept in the order given.
type Logger struct {
	mu    sync.Mutex
	out   io.Writer
	level int
	json  bool
}

func NewLogger(out io.Writer, level, format string) *Logger {
	return &Logger{out: out, level: parseLevel(level), json: format == "json"}
}

func (l *Logger) Enabled(level int) bool { return level >= l.level }

// Log writes an event of logger `name` for request `requestID` ("-" outside a call).
func (l *Logger) Log(level int, name, requestID, msg string, fields ...interface{}) {
	if level < l.level {
		return
	}
	now := time.Now()
	var b bytes.Buffer
	if l.json {
		b.WriteString(`{"ts": "`)
		b.WriteString(now.UTC().Format("2006-01-02T15:04:05.000Z"))
		b.WriteString(`", "level": "`)
		b.WriteString(levelNames[level])
		b.WriteString(`", "logger": `)
		writeJSON(&b, name)
		b.WriteString(`, "msg": `)
		writeJSON(&b, msg)
		b.WriteString(`, "request_id": `)
		writeJSON(&b, requestID)
		for i := 0; i+1 < len(fields); i += 2 {
			b.WriteString(", ")
			writeJSON(&b, fmt.Sprint(fields[i]))
			b.WriteString(": ")
			writeJSON(&b, fields[i+1])
		}
		b.WriteString("}\n")
	} else {
		b.WriteString(now.Format("2006-01-02 15:04:05,000"))
		fmt.Fprintf(&b, " %-5s %s [%s] %s", levelNames[level], name, requestID, msg)
		for i := 0; i+1 < len(fields); i += 2 {
			fmt.Fprintf(&b, " %v=%s", fields[i], textValue(fields[i+1]))
		}
		b.WriteByte('\n')
	}
	l.mu.Lock()
	l.out.Write(b.Bytes()) //nolint:errcheck // nowhere to report a failed log write
	l.mu.Unlock()
}

func (l *Logger) Info(name, msg string, fields ...interface{}) {
	l.Log(levelInfo, name, "-", msg, fields...)
}
func (l *Logger) Warn(name, msg string, fields ...interface{}) {
	l.Log(levelWarning, name, "-", msg, fields...)
}
func (l *Logger) Error(name, msg string, fields ...interface{}) {
	l.Log(levelError, name, "-", msg, fields...)
}

func writeJSON(b *bytes.Buffer, v interface{}) {
	switch x := v.(type) {
	case error:
		writeJSON(b, x.Error())
		return
	case time.Duration:
		b.WriteString(strconv.FormatFloat(x.Seconds(), 'f', -1, 64))
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		data, _ = json.Marshal(fmt.Sprint(v))
	}
	b.Write(data)
}

func textValue(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case error:
		return x.Error()
	case time.Duration:
		return strconv.FormatFloat(x.Seconds(), 'f', -1, 64)
	case []string, map[string]string, map[string][]string:
		data, _ := json.Marshal(x)
		return string(data)
	}
	return fmt.Sprint(v)
}

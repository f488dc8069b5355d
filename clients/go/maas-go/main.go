// maas-go: an example Go client of the maas suite through the gateway, on stubs generated from protos/ by
// ../build.sh (GOPATH mode, Debian's Go packages). `maas-go -h` for usage.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"maasgen/inference"
	nlpv1 "maasgen/maas/nlp/v1"
	textgenv1 "maasgen/maas/textgen/v1"
)

const usage = `usage: maas-go [options] <command> [text ...]

commands:
  sentiment TEXT...           maas.nlp.v1.NlpAnalysis/AnalyzeSentiment
  classify TEXT...            ClassifyText (zero-shot with --labels, else built-in moods and genres)
  entities TEXT...            ExtractEntities
  embed TEXT...               EmbedText
  generate PROMPT             maas.textgen.v1.TextGenerator/Generate
  stream PROMPT               GenerateStream: prints the text as it arrives
  live                        inference.GRPCInferenceService/ServerLive (KServe v2)
  metadata MODEL              ModelMetadata (KServe v2)
  all                         a tour of the calls above (generation: 40 tokens, seed 7, unless given)

options (before the command):
`

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var (
	target       = flag.String("target", envOr("MAAS_TARGET", "127.0.0.1:50051"), "the gateway (default $MAAS_TARGET or 127.0.0.1:50051); $MAAS_API_KEY is sent if set")
	deadlineMs   = flag.Int("deadline-ms", 30000, "each call's deadline in milliseconds")
	jsonOut      = flag.Bool("json", false, "JSON out (stream: one object per message, as they arrive)")
	requestID    = flag.String("request-id", "", "sent as x-request-id")
	labels       = flag.String("labels", "", "candidate labels, comma-separated (classify)")
	chat         = flag.Bool("chat", false, "send PROMPT as a user chat message instead of a plain prompt")
	maxNewTokens = flag.Int("max-new-tokens", 0, "generate/stream: at most this many tokens")
	temperature  = flag.Float64("temperature", 0, "generate/stream: sampling temperature (0: greedy)")
	topP         = flag.Float64("top-p", 0, "generate/stream: nucleus sampling")
	topK         = flag.Int("top-k", 0, "generate/stream: top-k sampling")
	seed         = flag.Uint64("seed", 0, "generate/stream: sampling seed")
	stops        stringList
	set          = map[string]bool{} // flags given on the command line (proto3 optional fields stay unset otherwise)
)

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type client struct {
	conn *grpc.ClientConn
	nlp  nlpv1.NlpAnalysisClient
	tg   textgenv1.TextGeneratorClient
	kv2  inference.GRPCInferenceServiceClient
}

// ctx: the call's deadline, API key and request id.
func (c *client) ctx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*deadlineMs)*time.Millisecond)
	var kv []string
	if key := os.Getenv("MAAS_API_KEY"); key != "" {
		kv = append(kv, "authorization", "Bearer "+key)
	}
	if *requestID != "" {
		kv = append(kv, "x-request-id", *requestID)
	}
	if len(kv) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	}
	return ctx, cancel
}

var marshal = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

func printJSON(m proto.Message) {
	b, err := marshal.Marshal(m)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
}

func needTexts(cmd string, texts []string) []string {
	if len(texts) == 0 {
		panic(usageError{cmd + " needs at least one text"})
	}
	return texts
}

func f3(x float64) string { return fmt.Sprintf("%.3f", x) }

func (c *client) sentiment(texts []string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	var trailer metadata.MD
	r, err := c.nlp.AnalyzeSentiment(ctx, &nlpv1.AnalyzeSentimentRequest{Texts: texts}, grpc.Trailer(&trailer))
	if err != nil {
		return callError{err, trailer}
	}
	if *jsonOut {
		printJSON(r)
		return nil
	}
	for i, s := range r.Results {
		label := strings.TrimPrefix(s.Label.String(), "SENTIMENT_")
		fmt.Printf("%-8s neg=%s neu=%s pos=%s  %s\n", label, f3(float64(s.Negative)), f3(float64(s.Neutral)), f3(float64(s.Positive)), texts[i])
	}
	return nil
}

func (c *client) classify(texts, candidates []string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	var trailer metadata.MD
	r, err := c.nlp.ClassifyText(ctx, &nlpv1.ClassifyTextRequest{Texts: texts, CandidateLabels: candidates}, grpc.Trailer(&trailer))
	if err != nil {
		return callError{err, trailer}
	}
	if *jsonOut {
		printJSON(r)
		return nil
	}
	for i, cl := range r.Results {
		fmt.Println(texts[i])
		for j, s := range cl.Scores {
			if j == 5 {
				break
			}
			group := ""
			if s.Group != "" {
				group = s.Group + "/"
			}
			fmt.Printf("  %s  %s%s\n", f3(float64(s.Score)), group, s.Label)
		}
	}
	return nil
}

func (c *client) entities(texts []string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	var trailer metadata.MD
	r, err := c.nlp.ExtractEntities(ctx, &nlpv1.ExtractEntitiesRequest{Texts: texts}, grpc.Trailer(&trailer))
	if err != nil {
		return callError{err, trailer}
	}
	if *jsonOut {
		printJSON(r)
		return nil
	}
	for i, list := range r.Results {
		fmt.Println(texts[i])
		for _, e := range list.Entities {
			fmt.Printf("  %-12s %s  [%d, %d)  %s\n", e.Label, e.Text, e.Span.GetStart(), e.Span.GetEnd(), f3(float64(e.Score)))
		}
	}
	return nil
}

func (c *client) embed(texts []string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	var trailer metadata.MD
	r, err := c.nlp.EmbedText(ctx, &nlpv1.EmbedTextRequest{Texts: texts}, grpc.Trailer(&trailer))
	if err != nil {
		return callError{err, trailer}
	}
	if *jsonOut {
		printJSON(r)
		return nil
	}
	for i, e := range r.Embeddings {
		var sum float64
		for _, v := range e.Values {
			sum += float64(v) * float64(v)
		}
		head := make([]string, 0, 4)
		for j := 0; j < 4 && j < len(e.Values); j++ {
			head = append(head, f3(float64(e.Values[j])))
		}
		fmt.Printf("dimension %d  norm %s  [%s, ...]  %s\n", r.Dimension, f3(math.Sqrt(sum)), strings.Join(head, ", "), texts[i])
	}
	return nil
}

// generateRequest: the flags given on the command line; the others stay unset (the server's defaults).
func generateRequest(prompt string) *textgenv1.GenerateRequest {
	r := &textgenv1.GenerateRequest{Stop: stops}
	if *chat {
		r.Messages = []*textgenv1.ChatMessage{{Role: "user", Content: prompt}}
	} else {
		r.Prompt = prompt
	}
	if set["max-new-tokens"] {
		v := int32(*maxNewTokens)
		r.MaxNewTokens = &v
	}
	if set["temperature"] {
		v := float32(*temperature)
		r.Temperature = &v
	}
	if set["top-p"] {
		v := float32(*topP)
		r.TopP = &v
	}
	if set["top-k"] {
		r.TopK = int32(*topK)
	}
	if set["seed"] {
		v := *seed
		r.Seed = &v
	}
	return r
}

func (c *client) generate(prompt string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	var trailer metadata.MD
	r, err := c.tg.Generate(ctx, generateRequest(prompt), grpc.Trailer(&trailer))
	if err != nil {
		return callError{err, trailer}
	}
	if *jsonOut {
		printJSON(r)
		return nil
	}
	fmt.Println(r.Text)
	fmt.Printf("[%s, %d tokens, seed %d]\n", strings.TrimPrefix(r.FinishReason.String(), "FINISH_REASON_"), r.CompletionTokens, r.Seed)
	return nil
}

func (c *client) stream(prompt string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	g := generateRequest(prompt)
	req := &textgenv1.GenerateStreamRequest{Prompt: g.Prompt, Messages: g.Messages, MaxNewTokens: g.MaxNewTokens,
		Temperature: g.Temperature, TopP: g.TopP, TopK: g.TopK, RepetitionPenalty: g.RepetitionPenalty, Seed: g.Seed,
		Stop: g.Stop, Logprobs: g.Logprobs}
	s, err := c.tg.GenerateStream(ctx, req)
	if err != nil {
		return callError{err, nil}
	}
	var last *textgenv1.GenerateStreamResponse
	for {
		event, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return callError{err, s.Trailer()}
		}
		if *jsonOut {
			printJSON(event)
		} else {
			os.Stdout.WriteString(event.Text) // unbuffered: each delta shows as it arrives
		}
		last = event
	}
	if !*jsonOut && last != nil {
		fmt.Printf("\n[%s, %d tokens]\n", strings.TrimPrefix(last.FinishReason.String(), "FINISH_REASON_"), last.CompletionTokens)
	}
	return nil
}

func (c *client) live() error {
	ctx, cancel := c.ctx()
	defer cancel()
	r, err := c.kv2.ServerLive(ctx, &inference.ServerLiveRequest{})
	if err != nil {
		return callError{err, nil}
	}
	if *jsonOut {
		printJSON(r)
		return nil
	}
	fmt.Printf("live: %v\n", r.Live)
	return nil
}

func (c *client) metadata(name string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	var trailer metadata.MD
	r, err := c.kv2.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: name}, grpc.Trailer(&trailer))
	if err != nil {
		return callError{err, trailer}
	}
	if *jsonOut {
		printJSON(r)
		return nil
	}
	fmt.Printf("%s (%s) versions %s\n", r.Name, r.Platform, strings.Join(r.Versions, ", "))
	for _, kind := range []struct {
		name    string
		tensors []*inference.ModelMetadataResponse_TensorMetadata
	}{{"input", r.Inputs}, {"output", r.Outputs}} {
		for _, t := range kind.tensors {
			fmt.Printf("  %s %s %s %v\n", kind.name, t.Name, t.Datatype, t.Shape)
		}
	}
	return nil
}

func (c *client) all() error {
	// the tour keeps generation short, and seeded: the stream repeats Generate's text
	if !set["max-new-tokens"] {
		*maxNewTokens, set["max-new-tokens"] = 40, true
	}
	if !set["seed"] {
		*seed, set["seed"] = 7, true
	}
	steps := []struct {
		title string
		run   func() error
	}{
		{"AnalyzeSentiment", func() error { return c.sentiment([]string{"I love this record!", "What a dull, boring film."}) }},
		{"ClassifyText (zero-shot)", func() error {
			return c.classify([]string{"The striker scored twice in the final"}, []string{"sports", "politics", "music"})
		}},
		{"EmbedText", func() error { return c.embed([]string{"calm piano for studying"}) }},
		{"Generate", func() error { return c.generate("Once upon a time") }},
		{"GenerateStream", func() error { return c.stream("Once upon a time") }},
		{"ServerLive (KServe v2)", c.live},
		{"ModelMetadata text-encoder", func() error { return c.metadata("text-encoder") }},
	}
	for _, s := range steps {
		if !*jsonOut {
			fmt.Printf("\n== %s\n", s.title)
		}
		if err := s.run(); err != nil {
			return err
		}
	}
	return nil
}

// callError: a failed call and its trailing metadata (x-request-id).
type callError struct {
	err     error
	trailer metadata.MD
}

func (e callError) Error() string { return e.err.Error() }

type violation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

type errorReport struct {
	Code            string      `json:"code"`
	Message         string      `json:"message"`
	FieldViolations []violation `json:"field_violations,omitempty"`
	RetryAfterS     *float64    `json:"retry_after_s,omitempty"`
	RequestID       string      `json:"request_id,omitempty"`
}

func describe(e callError) errorReport {
	st := status.Convert(e.err)
	rep := errorReport{Code: rpccode.Code_name[int32(st.Code())], Message: st.Message()}
	if rep.Code == "" {
		rep.Code = st.Code().String()
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				rep.FieldViolations = append(rep.FieldViolations, violation{v.GetField(), v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			s := float64(d.GetRetryDelay().GetSeconds()) + float64(d.GetRetryDelay().GetNanos())/1e9
			rep.RetryAfterS = &s
		}
	}
	if ids := e.trailer.Get("x-request-id"); len(ids) > 0 {
		rep.RequestID = ids[0]
	}
	return rep
}

func main() {
	flag.Var(&stops, "stop", "generate/stream: a stop string (repeatable)")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), usage)
		flag.PrintDefaults()
		fmt.Fprintln(flag.CommandLine.Output(), "\nA failed call prints \"error: CODE: message\" (and each field violation) on stderr and exits 1.")
	}
	flag.Parse()
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	args := flag.Args()
	if len(args) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(args[0], args[1:]))
}

func run(cmd string, texts []string) (rc int) {
	conn, err := grpc.Dial(*target, grpc.WithInsecure())
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	defer conn.Close()
	c := &client{conn: conn, nlp: nlpv1.NewNlpAnalysisClient(conn), tg: textgenv1.NewTextGeneratorClient(conn),
		kv2: inference.NewGRPCInferenceServiceClient(conn)}
	defer func() {
		if r := recover(); r != nil {
			u, ok := r.(usageError)
			if !ok {
				panic(r)
			}
			fmt.Fprintf(os.Stderr, "%s\n\n", u.msg)
			flag.Usage()
			rc = 2
		}
	}()
	commands := map[string]func() error{
		"sentiment": func() error { return c.sentiment(needTexts(cmd, texts)) },
		"classify": func() error {
			var cands []string
			if *labels != "" {
				cands = strings.Split(*labels, ",")
			}
			return c.classify(needTexts(cmd, texts), cands)
		},
		"entities": func() error { return c.entities(needTexts(cmd, texts)) },
		"embed":    func() error { return c.embed(needTexts(cmd, texts)) },
		"generate": func() error { return c.generate(strings.Join(needTexts(cmd, texts), " ")) },
		"stream":   func() error { return c.stream(strings.Join(needTexts(cmd, texts), " ")) },
		"live":     c.live,
		"metadata": func() error { return c.metadata(needTexts(cmd, texts)[0]) },
		"all":      c.all,
	}
	fn, ok := commands[cmd]
	if !ok {
		panic(usageError{"unknown command " + cmd})
	}
	err = fn()
	if err == nil {
		return 0
	}
	ce, ok := err.(callError)
	if !ok {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	rep := describe(ce)
	if *jsonOut {
		b, _ := json.Marshal(map[string]errorReport{"error": rep})
		fmt.Println(string(b))
	}
	fmt.Fprintf(os.Stderr, "error: %s: %s\n", rep.Code, rep.Message)
	for _, v := range rep.FieldViolations {
		fmt.Fprintf(os.Stderr, "  %s: %s\n", v.Field, v.Description)
	}
	if rep.RetryAfterS != nil {
		fmt.Fprintf(os.Stderr, "  retry after %g s\n", *rep.RetryAfterS)
	}
	if rep.RequestID != "" {
		fmt.Fprintf(os.Stderr, "  request id %s\n", rep.RequestID)
	}
	return 1
}

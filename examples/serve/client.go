// A small Go client for `riskguard serve` (documentation, not a package).
//
//	riskguard serve -p policies/default.yaml &
//	go run examples/serve/client.go
//
// Standard library only. The structs hold the fields a bot acts on; the full documents are
// riskguard's JSON Schemas (GET /openapi.json).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

type Order struct {
	Symbol        string  `json:"symbol"`
	Side          string  `json:"side"` // buy | sell
	Amount        float64 `json:"amount"`
	Type          string  `json:"type,omitempty"`
	Price         float64 `json:"price,omitempty"`
	Leverage      float64 `json:"leverage,omitempty"`
	ReduceOnly    bool    `json:"reduceOnly,omitempty"`
	StopLossPrice float64 `json:"stopLossPrice,omitempty"`
	ClientOrderID string  `json:"clientOrderId,omitempty"`
}

type Violation struct {
	Rule     string `json:"rule"`
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

type Decision struct {
	Decision         string   `json:"decision"` // allow | resize | deny
	DecisionID       string   `json:"decisionId"`
	MaxAllowedAmount *float64 `json:"maxAllowedAmount"`
	// With an order: the amount to send — the order's on allow, less on resize, 0 on deny.
	ApprovedAmount *float64 `json:"approvedAmount"`
	Policy         struct {
		Name, Version, Digest string
	} `json:"policy"`
	Violations []Violation `json:"violations"`
}

// Problem is an RFC 9457 problem document; Problems locate each fault by JSON path.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Problems []struct {
		Path, Message, Code string
	} `json:"problems"`
}

func (p *Problem) Error() string {
	var where []string
	for _, q := range p.Problems {
		where = append(where, q.Path+": "+q.Message)
	}
	return fmt.Sprintf("%d %s %s", p.Status, p.Detail, strings.Join(where, "; "))
}

type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client // keep-alive connections are reused across calls
}

func New(baseURL, token string) *Client {
	return &Client{BaseURL: baseURL, Token: token, HTTP: &http.Client{Timeout: 2 * time.Second}}
}

func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		p := &Problem{Status: res.StatusCode}
		_ = json.NewDecoder(res.Body).Decode(p)
		return p
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// Check decides on an order against the account's stored snapshot.
func (c *Client) Check(ctx context.Context, account string, o Order) (*Decision, error) {
	var d Decision
	err := c.call(ctx, "POST", "/v1/check", map[string]any{"account": account, "order": o}, &d)
	return &d, err
}

// StoreSnapshot sends the account's latest snapshot (raw JSON, as the exchange adapter built it).
func (c *Client) StoreSnapshot(ctx context.Context, account string, snapshot json.RawMessage) error {
	var out map[string]any
	return c.call(ctx, "POST", "/v1/snapshots/"+url.PathEscape(account), snapshot, &out)
}

// AmountToSend is what a bot sends: the decision's approved amount (0 when denied or absent).
func AmountToSend(d *Decision) float64 {
	if d.ApprovedAmount != nil {
		return *d.ApprovedAmount
	}
	return 0
}

func main() {
	base := os.Getenv("RISKGUARD_URL")
	if base == "" {
		base = "http://127.0.0.1:8181"
	}
	c := New(base, os.Getenv("RISKGUARD_TOKEN"))
	ctx := context.Background()
	snap, err := os.ReadFile("examples/snapshots/binance-two-cross.json")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := c.StoreSnapshot(ctx, "main", snap); err != nil {
		fmt.Fprintln(os.Stderr, "store:", err)
		os.Exit(1)
	}
	o := Order{Symbol: "BTC/USDT:USDT", Side: "buy", Amount: 0.5, Leverage: 10}
	d, err := c.Check(ctx, "main", o)
	if err != nil {
		// down or refused: a guardrail fails closed, so the order is not sent
		var p *Problem
		if errors.As(err, &p) {
			fmt.Fprintln(os.Stderr, "refused:", p)
		} else {
			fmt.Fprintln(os.Stderr, "not sending:", err)
		}
		os.Exit(1)
	}
	fmt.Printf("%s: send %g (policy %s)\n", d.Decision, AmountToSend(d), d.Policy.Digest)
	for _, v := range d.Violations {
		fmt.Printf("  %s %s: %s\n", v.Severity, v.Code, v.Message)
	}
}

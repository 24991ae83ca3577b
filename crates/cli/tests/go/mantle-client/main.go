// mantle-client signs one state batch through Cohort exactly as Mantle's batch submitter
// does: resty v2 with a fresh HS256 JWT per request (OnBeforeRequest), the request struct of
// Mantle's tss package (*big.Int numbers, [][32]byte roots), SetResult on a nil []byte, and
// the body decoded by hand into Mantle's BatchSubmitterResponse, as its driver does.
//
// Usage: mantle-client -url URL -roots FILE -start N -offset N [-jwt-secret-file F]
//
//	[-jwt fresh|stale|bad|none] [-type N]
//
// It prints one JSON line: {"ok","status","signature" (0x-hex of the decoded []byte),
// "roll_back","error"} and exits 0 when the call succeeded and decoded.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/golang-jwt/jwt/v4"
)

// SignStateRequest is Mantle's tss.SignStateRequest.
type SignStateRequest struct {
	Type                uint64     `json:"type"`
	StartBlock          *big.Int   `json:"start_block"`
	OffsetStartsAtIndex *big.Int   `json:"offset_starts_at_index"`
	Challenge           string     `json:"challenge"`
	StateRoots          [][32]byte `json:"state_roots"`
	ElectionId          uint64     `json:"election_id"`
}

// BatchSubmitterResponse is Mantle's tss.BatchSubmitterResponse.
type BatchSubmitterResponse struct {
	Signature []byte `json:"signature"`
	RollBack  bool   `json:"roll_back"`
}

type result struct {
	Ok        bool   `json:"ok"`
	Status    int    `json:"status"`
	Signature string `json:"signature,omitempty"`
	RollBack  bool   `json:"roll_back"`
	Error     string `json:"error,omitempty"`
}

// newClient builds the resty client as Mantle's tss-client NewClient does: base URL, and
// with a jwt secret a hook that signs {"iat": now} with HS256 before every request.
func newClient(url string, secret []byte, mode string) *resty.Client {
	client := resty.New()
	client.SetHostURL(url)
	client.SetTimeout(300 * time.Second)
	if mode == "none" || secret == nil {
		return client
	}
	client.OnBeforeRequest(func(c *resty.Client, r *resty.Request) error {
		iat := time.Now()
		key := secret
		switch mode {
		case "stale":
			iat = iat.Add(-120 * time.Second)
		case "bad":
			key = append([]byte{}, secret...)
			key[0] ^= 0xff
		}
		token := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iat": iat.Unix()})
		signed, err := token.SignedString(key)
		if err != nil {
			return fmt.Errorf("failed to create JWT token: %w", err)
		}
		r.Header.Set("Authorization", "Bearer "+signed)
		return nil
	})
	return client
}

// signStateBatch is Mantle's tss-client GetSignStateBatch.
func signStateBatch(client *resty.Client, request SignStateRequest) (*BatchSubmitterResponse, int, error) {
	var signature []byte
	response, err := client.R().
		SetHeader("Content-Type", "application/json").
		SetBody(request).
		SetResult(signature).
		Post("/api/v1/sign/state")
	if err != nil {
		status := 0
		if response != nil {
			status = response.StatusCode()
		}
		return nil, status, fmt.Errorf("failed to sign state batch: %w", err)
	}
	if response.StatusCode() != 200 {
		return nil, response.StatusCode(), errors.New(response.String())
	}
	var res BatchSubmitterResponse
	if err := json.Unmarshal(response.Body(), &res); err != nil {
		return nil, response.StatusCode(), fmt.Errorf("failed to unmarshal response: %w", err)
	}
	return &res, response.StatusCode(), nil
}

func readRoots(path string) ([][32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var roots [][32]byte
	scan := bufio.NewScanner(f)
	for scan.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(scan.Text()), "0x")
		if line == "" {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("bad root %q", line)
		}
		var r [32]byte
		copy(r[:], b)
		roots = append(roots, r)
	}
	return roots, scan.Err()
}

func main() {
	url := flag.String("url", "http://127.0.0.1:7100", "Cohort manager URL")
	rootsFile := flag.String("roots", "", "file of 0x-hex state roots, one per line")
	start := flag.String("start", "1", "start_block")
	offset := flag.String("offset", "0", "offset_starts_at_index")
	secretFile := flag.String("jwt-secret-file", "", "file holding the 32-byte jwt secret as hex")
	mode := flag.String("jwt", "fresh", "fresh | stale (iat 120 s ago) | bad (wrong secret) | none")
	kind := flag.Uint64("type", 0, "request type")
	flag.Parse()

	out := json.NewEncoder(os.Stdout)
	fail := func(status int, err error) {
		_ = out.Encode(result{Ok: false, Status: status, Error: err.Error()})
		os.Exit(1)
	}
	var secret []byte
	if *secretFile != "" {
		text, err := os.ReadFile(*secretFile)
		if err != nil {
			fail(0, err)
		}
		secret, err = hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(string(text)), "0x"))
		if err != nil {
			fail(0, err)
		}
	}
	roots, err := readRoots(*rootsFile)
	if err != nil {
		fail(0, err)
	}
	startBlock, ok1 := new(big.Int).SetString(*start, 10)
	offsetIndex, ok2 := new(big.Int).SetString(*offset, 10)
	if !ok1 || !ok2 {
		fail(0, errors.New("start and offset must be decimal integers"))
	}
	request := SignStateRequest{
		Type:                *kind,
		StartBlock:          startBlock,
		OffsetStartsAtIndex: offsetIndex,
		StateRoots:          roots,
	}
	res, status, err := signStateBatch(newClient(*url, secret, *mode), request)
	if err != nil {
		fail(status, err)
	}
	_ = out.Encode(result{
		Ok:        true,
		Status:    status,
		Signature: "0x" + hex.EncodeToString(res.Signature),
		RollBack:  res.RollBack,
	})
}

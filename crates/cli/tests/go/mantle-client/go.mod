// A small Go program that calls Cohort the way Mantle's batch submitter does
// (batch-submitter/tss-client/client.go). Built offline from Debian's Go sources:
//   GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go build
module cohort.test/mantle-client

go 1.19

require (
	github.com/go-resty/resty/v2 v2.6.0
	github.com/golang-jwt/jwt/v4 v4.4.2
)

require (
	golang.org/x/net v0.0.0-20210405180319-a5a99cb37ef4 // indirect
	golang.org/x/sys v0.5.0 // indirect
	golang.org/x/text v0.7.0 // indirect
)

replace github.com/go-resty/resty/v2 => /usr/share/gocode/src/github.com/go-resty/resty

replace github.com/golang-jwt/jwt/v4 => /usr/share/gocode/src/github.com/golang-jwt/jwt

replace golang.org/x/net => /usr/share/gocode/src/golang.org/x/net

replace golang.org/x/sys => /usr/share/gocode/src/golang.org/x/sys

replace golang.org/x/text => /usr/share/gocode/src/golang.org/x/text

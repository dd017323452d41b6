package webhooks

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/iotest"
)

// readBody gives what io.ReadAll gives, whatever the declared length says and
// however the reader splits its reads, including MaxBytesReader's refusal.
func TestReadBodyReadsAsReadAll(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 100) // 1,600 bytes
	readers := map[string]func([]byte) io.Reader{
		"whole":       func(b []byte) io.Reader { return bytes.NewReader(b) },
		"byte a time": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"half":        func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"data + EOF":  func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
	}
	for name, reader := range readers {
		for _, declared := range []int64{-1, 0, 1, 100, int64(len(body)) - 1, int64(len(body)), int64(len(body)) + 1, 5000, MaxBody + 1} {
			got, err := readBody(reader(body), declared)
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("%s, declared %d: %d bytes, %v; want %d bytes", name, declared, len(got), err, len(body))
			}
		}
	}

	failing := io.MultiReader(bytes.NewReader(body[:10]), iotest.ErrReader(errors.New("cut")))
	if _, err := readBody(failing, int64(len(body))); err == nil || err.Error() != "cut" {
		t.Errorf("a failing reader: %v, want its error", err)
	}

	// Larger than MaxBody, whatever it declared: MaxBytesReader's error comes through.
	big := bytes.Repeat([]byte("x"), MaxBody+1)
	for _, declared := range []int64{-1, 100, MaxBody, MaxBody + 1} {
		rec := httptest.NewRecorder()
		_, err := readBody(http.MaxBytesReader(rec, io.NopCloser(bytes.NewReader(big)), MaxBody), declared)
		var tooBig *http.MaxBytesError
		if !errors.As(err, &tooBig) {
			t.Errorf("declared %d: %v, want *http.MaxBytesError", declared, err)
		}
	}
}

// BenchmarkReadBody compares reading a delivery-sized body with its declared length
// and with io.ReadAll.
func BenchmarkReadBody(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1400)
	b.Run("declared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := readBody(bytes.NewReader(body), int64(len(body))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("io.ReadAll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := io.ReadAll(bytes.NewReader(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

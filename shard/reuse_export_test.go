package shard

import "io"

// EncodeViaFileWriter is Encode through pqarrow.FileWriter for every
// file: the reference the direct writer (reuse.go) must match byte for
// byte.
func (e *Encoder) EncodeViaFileWriter(w io.Writer, tr TableRows, p Params) (int64, error) {
	return e.encode(w, tr, p, false)
}

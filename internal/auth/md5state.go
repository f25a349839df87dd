package auth

import (
	"crypto/md5"
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"strconv"
	"strings"
)

// md5State is an HMAC-MD5 key reduced to the two MD5 chaining states that
// follow the first block of the inner and the outer hash (RFC 2104): the
// inner state, then the outer, each as four little-endian 32-bit words. This
// is E-MailRelay's "masked" key (G::Hash::mask with G::Md5::predigest), the
// STATE of an md5 secrets line once base64-decoded. With it one can compute
// HMAC-MD5 for any message without knowing the password.
type md5State [32]byte

// maskKey computes the md5State of an HMAC-MD5 key.
func maskKey(key []byte) md5State {
	if len(key) > md5.BlockSize {
		sum := md5.Sum(key)
		key = sum[:]
	}
	var k, pad [md5.BlockSize]byte
	copy(k[:], key)
	var st md5State
	for i := range pad {
		pad[i] = k[i] ^ 0x36
	}
	blockState(pad[:], st[:16])
	for i := range pad {
		pad[i] = k[i] ^ 0x5c
	}
	blockState(pad[:], st[16:])
	return st
}

// blockState hashes one 64-byte block and writes the chaining state to out
// as four little-endian words. crypto/md5 exposes its state only through
// MarshalBinary: "md5\x01", the four words big-endian, the pending block,
// the length.
func blockState(block, out []byte) {
	h := md5.New()
	h.Write(block)
	m, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil || len(m) < 20 {
		panic("auth: crypto/md5 state cannot be marshalled")
	}
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint32(out[4*i:], binary.BigEndian.Uint32(m[4+4*i:]))
	}
}

// resume returns an MD5 hash that continues from a chaining state of 16
// bytes taken after one block.
func resume(state []byte) hash.Hash {
	b := make([]byte, 0, 4+16+md5.BlockSize+8)
	b = append(b, "md5\x01"...)
	for i := 0; i < 4; i++ {
		b = binary.BigEndian.AppendUint32(b, binary.LittleEndian.Uint32(state[4*i:]))
	}
	b = append(b, make([]byte, md5.BlockSize)...)
	b = binary.BigEndian.AppendUint64(b, md5.BlockSize)
	h := md5.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		panic("auth: crypto/md5 state cannot be restored: " + err.Error())
	}
	return h
}

// hmac returns HMAC-MD5(key, msg) for the key the state was made from.
func (st *md5State) hmac(msg []byte) [md5.Size]byte {
	inner := resume(st[:16])
	inner.Write(msg)
	outer := resume(st[16:])
	outer.Write(inner.Sum(nil))
	var sum [md5.Size]byte
	outer.Sum(sum[:0])
	return sum
}

// String is the state as emailrelay-passwd prints it: base64.
func (st *md5State) String() string {
	return base64.StdEncoding.EncodeToString(st[:])
}

// parseMD5State reads the STATE field of an md5 line: base64 of 32 bytes, or
// E-MailRelay 1.x's eight dot-separated decimal words.
func parseMD5State(s string) (md5State, error) {
	var st md5State
	if strings.Count(s, ".") == 7 && strings.Trim(s, "0123456789.") == "" {
		for i, f := range strings.Split(s, ".") {
			n, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				return st, errors.New("invalid md5 state: a dotted state is eight decimal numbers below 2^32")
			}
			binary.LittleEndian.PutUint32(st[4*i:], uint32(n))
		}
		return st, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != len(st) {
		return st, errors.New("invalid md5 state: want the base64 of 32 bytes, as emailrelay-passwd or relaykeeper passwd --md5 prints")
	}
	copy(st[:], b)
	return st, nil
}

// MD5State returns the STATE field of an md5 line for password, in the
// base64 form that E-MailRelay's emailrelay-passwd prints for it.
func MD5State(password string) string {
	st := maskKey([]byte(password))
	return st.String()
}

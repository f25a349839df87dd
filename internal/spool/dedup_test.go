package spool

import (
	"reflect"
	"testing"
)

func TestRevDSN4MergeDuplicates(t *testing.T) {
	in := []Recipient{
		{Addr: "a@x", Notify: "NEVER", Status: Pending},
		{Addr: "b@x", Notify: "SUCCESS", Status: Pending},
		{Addr: "a@x", Status: Pending, ORCPT: "rfc822;A@x"},
		{Addr: "B@x", Status: Pending},
		{Addr: "b@x", Notify: "DELAY", ORCPT: "rfc822;late@x", Status: Pending},
		{Addr: "c@x", Notify: "NEVER", Status: Pending},
		{Addr: "c@x", Notify: "never", Status: Pending},
		{Addr: "d@x", Notify: "FAILURE", Status: Pending},
		{Addr: "d@x", Notify: "FAILURE", Status: Pending},
	}
	want := []Recipient{
		{Addr: "a@x", Status: Pending, ORCPT: "rfc822;A@x"},
		{Addr: "b@x", Notify: "SUCCESS,DELAY", ORCPT: "rfc822;late@x", Status: Pending},
		{Addr: "B@x", Status: Pending},
		{Addr: "c@x", Notify: "NEVER", Status: Pending},
		{Addr: "d@x", Notify: "FAILURE", Status: Pending},
	}
	if got := MergeDuplicates(in); !reflect.DeepEqual(got, want) {
		t.Errorf("MergeDuplicates:\n got %+v\nwant %+v", got, want)
	}
	if got := MergeDuplicates(nil); len(got) != 0 {
		t.Errorf("MergeDuplicates(nil) = %v", got)
	}
}

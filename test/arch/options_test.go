package arch

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// optionFuncs are the function-valued Options fields that may stay: clocks,
// message-ID generators and loggers do no work a reader must follow.
// Anything else is a seam and gets a small interface declared by its
// consumer (style.md: no work-doing function fields in Options structs).
// A test hook is named for what it is: Test....
var optionFuncs = map[string]bool{"Now": true, "MessageID": true, "Trace": true}

// funcOptions returns "File:Line Type.Field" for every function-typed field
// of a struct named Options or ...Options in files, which are one package's
// sources. A field whose type is a func type named in the same package
// counts too.
func funcOptions(fset *token.FileSet, files []*ast.File) []string {
	funcTypes := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if _, ok := ts.Type.(*ast.FuncType); ok {
					funcTypes[ts.Name.Name] = true
				}
			}
			return true
		})
	}
	var out []string
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !strings.HasSuffix(ts.Name.Name, "Options") {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			for _, field := range st.Fields.List {
				isFunc := false
				switch t := field.Type.(type) {
				case *ast.FuncType:
					isFunc = true
				case *ast.Ident:
					isFunc = funcTypes[t.Name]
				}
				if !isFunc {
					continue
				}
				for _, name := range field.Names {
					if optionFuncs[name.Name] || strings.HasPrefix(name.Name, "Test") {
						continue
					}
					pos := fset.Position(name.Pos())
					out = append(out, fmt.Sprintf("%s:%d %s.%s", pos.Filename, pos.Line, ts.Name.Name, name.Name))
				}
			}
			return true
		})
	}
	return out
}

// TestNoWorkInOptions fails when an Options struct under internal/ gains a
// function field that does work.
func TestNoWorkInOptions(t *testing.T) {
	fset := token.NewFileSet()
	byDir := map[string][]*ast.File{}
	for _, p := range nonTestGo(t, "../../internal") {
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		byDir[filepath.Dir(p)] = append(byDir[filepath.Dir(p)], f)
	}
	dirs := make([]string, 0, len(byDir))
	for d := range byDir {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		for _, bad := range funcOptions(fset, byDir[d]) {
			t.Errorf("%s: a function field in an Options struct; declare a 1-3 method interface in this package instead", strings.TrimPrefix(bad, "../../"))
		}
	}
}

// TestFuncOptionsFinds shows the scanner can fail.
func TestFuncOptionsFinds(t *testing.T) {
	const src = `package p
type Hook func(id string)
type Options struct {
	Now       func() int
	TestDrop  func()
	OnAccept  func(id string)
	OnResult  Hook
	Name      string
}
type DialOptions struct{ Dial func(addr string) error }
type Session struct{ OnClose func() }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := funcOptions(fset, []*ast.File{f})
	want := []string{"p.go:6 Options.OnAccept", "p.go:7 Options.OnResult", "p.go:10 DialOptions.Dial"}
	if !slices.Equal(got, want) {
		t.Errorf("funcOptions = %q; want %q", got, want)
	}
}

// Command krusty-extract turns kustomize's own krusty test suite (the `krusty/*_test.go`
// files of the sigs.k8s.io/kustomize/api module) into directories that `kustomize build`
// and lookctl can both build, so the suite becomes a differential test for lookctl.
//
// It does not compile or run the tests. It reads them with go/parser and interprets the
// small subset of Go the tests are written in: the kusttest harness calls (WriteK, WriteF,
// WriteC, Run, RunWithErr, AssertActualEqualsExpected...), string constants and `+`
// concatenations, fmt.Sprintf and a few strings/filepath helpers (evaluated with the real
// Go functions, so the result is exact), package helper functions that take the harness,
// closures (FileGen), table-driven tests with t.Run subcases, and `if`s whose condition
// is known. Anything else makes the case `unextractable`, with the reason.
//
// Usage: krusty-extract -api DIR_OF_API_MODULE -out OUT
//
// For each build (th.Run / th.RunWithErr / Kustomizer.Run) it writes OUT/<case>/root/...
// (the harness's in-memory file system, rooted at `/`) and OUT/<case>/case.json; an
// unextractable case gets a case.json with "unextractable" and no root. OUT/index.json
// lists every case and every test that builds nothing.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ---- values -------------------------------------------------------------------------

type value interface{}

type harnessV struct {
	kind string // MakeHarness, MakeEnhancedHarness, MakeEnhancedHarnessWithTmpRoot, MakeHarnessWithFs(disk)
}
type fsV struct{}
type dirV struct{ path string } // a filesys.ConfirmedDir
type optsV struct{ o *options }
type kustomizerV struct{ o *options }
type funcV struct {
	lit  *ast.FuncLit
	decl *ast.FuncDecl
	env  *env
}
type structV struct {
	fields map[string]value
	order  []string
}
type sliceV struct{ elems []value }
type mapV struct {
	keys []value
	vals []value
}
type runV struct{ r *run }
type errV struct{ r *run }
type errMsgV struct{ r *run }
type symV struct{ name string }    // a package-level identifier of another package
type opaqueV struct{ what string } // a value the interpreter does not model
type tV struct{}                   // *testing.T

type options struct {
	Reorder          string   `json:"reorder"`
	LoadRestrictions string   `json:"load_restrictions"`
	Plugins          bool     `json:"plugins"`
	Helm             bool     `json:"helm"`
	Exec             bool     `json:"exec"`
	ManagedByLabel   bool     `json:"managed_by_label"`
	Assignments      []string `json:"assignments,omitempty"`
}

func defaultOptions() *options {
	return &options{Reorder: "none", LoadRestrictions: "RootOnly"}
}

func (o *options) clone() *options {
	c := *o
	c.Assignments = append([]string(nil), o.Assignments...)
	return &c
}

// ---- cases ---------------------------------------------------------------------------

type run struct {
	dir             string
	line            int
	opts            *options
	files           map[string]string
	dirs            map[string]bool
	expectsError    *bool
	expectedErrors  []string
	expected        *string
	expectedTweaked bool
}

type caseCtx struct {
	name     string
	file     string
	testLine int
	harness  string
	files    map[string]string
	dirs     map[string]bool
	runs     []*run
	needs    map[string]bool
	skipped  string
	subcases int
}

type unextractable struct{ reason string }

func fail(pos token.Pos, format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	if pos.IsValid() {
		msg = fmt.Sprintf("line %d: %s", fset.Position(pos).Line, msg)
	}
	panic(unextractable{msg})
}

type skipSignal struct{ reason string }
type returnSignal struct{ vals []value }

// ---- environment ---------------------------------------------------------------------

type env struct {
	vars   map[string]value
	parent *env
}

func newEnv(parent *env) *env { return &env{vars: map[string]value{}, parent: parent} }

func (e *env) lookup(name string) (value, bool) {
	for s := e; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

func (e *env) set(name string, v value) bool {
	for s := e; s != nil; s = s.parent {
		if _, ok := s.vars[name]; ok {
			s.vars[name] = v
			return true
		}
	}
	return false
}

// ---- package -------------------------------------------------------------------------

var (
	krustyDir     string
	legacyConfigs string
	fset          = token.NewFileSet()
	funcs         = map[string]*ast.FuncDecl{}
	globals       = map[string]ast.Expr{}
	gtypes        = map[string]ast.Expr{}
	gvalues       = map[string]value{}
	evalling      = map[string]bool{}
)

type interp struct {
	c    *caseCtx
	file string
	out  *emitter
}

// ---- evaluation ----------------------------------------------------------------------

func (in *interp) eval(e ast.Expr, sc *env) value {
	return in.evalTyped(e, sc, nil)
}

func (in *interp) evalTyped(e ast.Expr, sc *env, typ ast.Expr) value {
	switch x := e.(type) {
	case *ast.BasicLit:
		switch x.Kind {
		case token.STRING:
			s, err := strconv.Unquote(x.Value)
			if err != nil {
				fail(x.Pos(), "string literal: %v", err)
			}
			return s
		case token.INT:
			n, err := strconv.Atoi(x.Value)
			if err != nil {
				fail(x.Pos(), "int literal: %v", err)
			}
			return n
		case token.CHAR:
			s, err := strconv.Unquote(x.Value)
			if err != nil {
				fail(x.Pos(), "char literal: %v", err)
			}
			return s
		}
		fail(x.Pos(), "literal %s", x.Value)
	case *ast.ParenExpr:
		return in.evalTyped(x.X, sc, typ)
	case *ast.Ident:
		return in.ident(x, sc)
	case *ast.BinaryExpr:
		return in.binary(x, sc)
	case *ast.UnaryExpr:
		v := in.eval(x.X, sc)
		switch x.Op {
		case token.AND:
			return v
		case token.NOT:
			b, ok := v.(bool)
			if !ok {
				if _, op := v.(*opaqueV); op {
					return v
				}
				fail(x.Pos(), "! of %s", describe(v))
			}
			return !b
		}
		fail(x.Pos(), "unary %s", x.Op)
	case *ast.StarExpr:
		return in.eval(x.X, sc)
	case *ast.CompositeLit:
		t := x.Type
		if t == nil {
			t = typ
		}
		return in.composite(x, t, sc)
	case *ast.FuncLit:
		return &funcV{lit: x, env: sc}
	case *ast.SelectorExpr:
		return in.selector(x, sc)
	case *ast.CallExpr:
		vals := in.call(x, sc)
		if len(vals) != 1 {
			fail(x.Pos(), "call %s yields %d values where one is needed", exprString(x.Fun), len(vals))
		}
		return vals[0]
	case *ast.IndexExpr:
		base := in.eval(x.X, sc)
		idx := in.eval(x.Index, sc)
		switch b := base.(type) {
		case *sliceV:
			i, ok := idx.(int)
			if !ok || i < 0 || i >= len(b.elems) {
				fail(x.Pos(), "index %v", idx)
			}
			return b.elems[i]
		case *mapV:
			for i, k := range b.keys {
				if k == idx {
					return b.vals[i]
				}
			}
			return nil
		}
		fail(x.Pos(), "index into %s", describe(base))
	}
	fail(e.Pos(), "expression %T (%s)", e, exprString(e))
	return nil
}

func (in *interp) ident(x *ast.Ident, sc *env) value {
	if v, ok := sc.lookup(x.Name); ok {
		return v
	}
	switch x.Name {
	case "true":
		return true
	case "false":
		return false
	case "nil":
		return nil
	}
	if v, ok := gvalues[x.Name]; ok {
		return v
	}
	if e, ok := globals[x.Name]; ok {
		if evalling[x.Name] {
			fail(x.Pos(), "recursive global %s", x.Name)
		}
		evalling[x.Name] = true
		v := in.evalTyped(e, newEnv(nil), gtypes[x.Name])
		evalling[x.Name] = false
		gvalues[x.Name] = v
		return v
	}
	if fd, ok := funcs[x.Name]; ok {
		return &funcV{decl: fd}
	}
	if x.Name == "MakeDefaultOptions" || x.Name == "MakeKustomizer" {
		return &symV{"krusty." + x.Name}
	}
	fail(x.Pos(), "unknown identifier %s", x.Name)
	return nil
}

func (in *interp) binary(x *ast.BinaryExpr, sc *env) value {
	if x.Op == token.LAND || x.Op == token.LOR {
		l, ok := in.eval(x.X, sc).(bool)
		if !ok {
			fail(x.Pos(), "condition %s is not known", exprString(x.X))
		}
		if x.Op == token.LAND && !l {
			return false
		}
		if x.Op == token.LOR && l {
			return true
		}
		r, ok := in.eval(x.Y, sc).(bool)
		if !ok {
			fail(x.Pos(), "condition %s is not known", exprString(x.Y))
		}
		return r
	}
	l := in.eval(x.X, sc)
	r := in.eval(x.Y, sc)
	switch x.Op {
	case token.ADD:
		ls, ok1 := l.(string)
		rs, ok2 := r.(string)
		if ok1 && ok2 {
			return ls + rs
		}
		li, ok1 := l.(int)
		ri, ok2 := r.(int)
		if ok1 && ok2 {
			return li + ri
		}
	case token.EQL, token.NEQ:
		if !comparable(l) || !comparable(r) {
			fail(x.Pos(), "comparison %s is not known", exprString(x))
		}
		eq := l == r
		if x.Op == token.NEQ {
			return !eq
		}
		return eq
	case token.LSS, token.GTR, token.LEQ, token.GEQ:
		li, ok1 := l.(int)
		ri, ok2 := r.(int)
		if ok1 && ok2 {
			switch x.Op {
			case token.LSS:
				return li < ri
			case token.GTR:
				return li > ri
			case token.LEQ:
				return li <= ri
			default:
				return li >= ri
			}
		}
	}
	fail(x.Pos(), "operator %s on %s and %s", x.Op, describe(l), describe(r))
	return nil
}

func comparable(v value) bool {
	switch v.(type) {
	case nil, string, bool, int, *symV, *funcV:
		return true
	}
	return false
}

func (in *interp) selector(x *ast.SelectorExpr, sc *env) value {
	if id, ok := x.X.(*ast.Ident); ok {
		if _, local := sc.lookup(id.Name); !local {
			if _, g := globals[id.Name]; !g {
				if _, f := funcs[id.Name]; !f {
					return &symV{id.Name + "." + x.Sel.Name}
				}
			}
		}
	}
	base := in.eval(x.X, sc)
	switch b := base.(type) {
	case *structV:
		v, ok := b.fields[x.Sel.Name]
		if !ok {
			fail(x.Pos(), "unknown field %s", x.Sel.Name)
		}
		return v
	case *optsV:
		return &symV{"opts." + x.Sel.Name}
	}
	return &opaqueV{exprString(x)}
}

// composite evaluates a composite literal; typ is its (possibly elided) type.
func (in *interp) composite(x *ast.CompositeLit, typ ast.Expr, sc *env) value {
	t := resolveType(typ)
	switch tt := t.(type) {
	case *ast.ArrayType:
		s := &sliceV{}
		for _, el := range x.Elts {
			s.elems = append(s.elems, in.evalTyped(el, sc, tt.Elt))
		}
		return s
	case *ast.MapType:
		m := &mapV{}
		for _, el := range x.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				fail(el.Pos(), "map element without key")
			}
			m.keys = append(m.keys, in.evalTyped(kv.Key, sc, tt.Key))
			m.vals = append(m.vals, in.evalTyped(kv.Value, sc, tt.Value))
		}
		return m
	case *ast.StructType:
		s := &structV{fields: map[string]value{}}
		ftypes := map[string]ast.Expr{}
		for _, f := range tt.Fields.List {
			for _, n := range f.Names {
				s.fields[n.Name] = zero(f.Type)
				s.order = append(s.order, n.Name)
				ftypes[n.Name] = f.Type
			}
		}
		for i, el := range x.Elts {
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				k, ok := kv.Key.(*ast.Ident)
				if !ok {
					fail(el.Pos(), "struct key %s", exprString(kv.Key))
				}
				s.fields[k.Name] = in.evalTyped(kv.Value, sc, ftypes[k.Name])
			} else if i < len(s.order) {
				s.fields[s.order[i]] = in.evalTyped(el, sc, ftypes[s.order[i]])
			}
		}
		return s
	}
	// A type of another package ([]byte is handled as a conversion): values we only
	// need to carry around, e.g. types.FieldSpec{...}.
	return &opaqueV{"composite " + exprString(typ)}
}

func resolveType(t ast.Expr) ast.Expr {
	for i := 0; i < 10; i++ {
		id, ok := t.(*ast.Ident)
		if !ok {
			break
		}
		def, ok := gtypes["type "+id.Name]
		if !ok {
			break
		}
		t = def
	}
	if p, ok := t.(*ast.StarExpr); ok {
		return resolveType(p.X)
	}
	return t
}

func zero(t ast.Expr) value {
	switch tt := resolveType(t).(type) {
	case *ast.Ident:
		switch tt.Name {
		case "string":
			return ""
		case "bool":
			return false
		case "int", "int64", "int32":
			return 0
		}
	}
	return nil
}

// ---- calls ---------------------------------------------------------------------------

func (in *interp) strs(args []ast.Expr, sc *env) []string {
	out := make([]string, len(args))
	for i, a := range args {
		s, ok := in.eval(a, sc).(string)
		if !ok {
			fail(a.Pos(), "argument %s is not a known string", exprString(a))
		}
		out[i] = s
	}
	return out
}

// softStrs evaluates string arguments; false when one is not a known string.
func (in *interp) softStrs(args []ast.Expr, sc *env) ([]string, bool) {
	out := make([]string, len(args))
	for i, a := range args {
		s, ok := in.softEval(a, sc).(string)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

func (in *interp) call(x *ast.CallExpr, sc *env) []value {
	// Conversions.
	if at, ok := x.Fun.(*ast.ArrayType); ok {
		if id, ok := at.Elt.(*ast.Ident); ok && id.Name == "byte" && len(x.Args) == 1 {
			return []value{in.eval(x.Args[0], sc)}
		}
	}
	if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "string" && len(x.Args) == 1 {
		return []value{in.eval(x.Args[0], sc)}
	}
	if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "make" && len(x.Args) >= 1 {
		switch resolveType(x.Args[0]).(type) {
		case *ast.MapType:
			return []value{&mapV{}}
		case *ast.ArrayType:
			return []value{&sliceV{}}
		}
	}
	if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "append" && len(x.Args) >= 1 {
		s, ok := in.eval(x.Args[0], sc).(*sliceV)
		if !ok && in.eval(x.Args[0], sc) != nil {
			fail(x.Pos(), "append to a non-slice")
		}
		n := &sliceV{}
		if s != nil {
			n.elems = append(n.elems, s.elems...)
		}
		for _, a := range x.Args[1:] {
			n.elems = append(n.elems, in.eval(a, sc))
		}
		return []value{n}
	}
	if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "len" && len(x.Args) == 1 {
		switch v := in.eval(x.Args[0], sc).(type) {
		case string:
			return []value{len(v)}
		case *sliceV:
			return []value{len(v.elems)}
		case *mapV:
			return []value{len(v.keys)}
		}
	}

	if sel, ok := x.Fun.(*ast.SelectorExpr); ok {
		var recv value
		qualified := ""
		if id, ok := sel.X.(*ast.Ident); ok {
			if _, local := sc.lookup(id.Name); !local {
				if _, g := globals[id.Name]; !g {
					qualified = id.Name + "." + sel.Sel.Name
				}
			}
		}
		if qualified != "" {
			return in.pkgCall(qualified, x, sc)
		}
		recv = in.eval(sel.X, sc)
		return in.method(recv, sel.Sel.Name, x, sc)
	}
	fv := in.eval(x.Fun, sc)
	switch f := fv.(type) {
	case *funcV:
		return in.apply(f, x, sc)
	case *symV:
		return in.pkgCall(f.name, x, sc)
	}
	fail(x.Pos(), "call of %s", exprString(x.Fun))
	return nil
}

func (in *interp) apply(f *funcV, x *ast.CallExpr, sc *env) []value {
	var ft *ast.FuncType
	var body *ast.BlockStmt
	fenv := newEnv(f.env)
	if f.decl != nil {
		ft, body = f.decl.Type, f.decl.Body
		fenv = newEnv(nil)
	} else {
		ft, body = f.lit.Type, f.lit.Body
	}
	var params []string
	for _, p := range ft.Params.List {
		for _, n := range p.Names {
			params = append(params, n.Name)
		}
		if len(p.Names) == 0 {
			params = append(params, "_")
		}
	}
	if len(params) != len(x.Args) {
		fail(x.Pos(), "call of %s with %d arguments (variadic?)", exprString(x.Fun), len(x.Args))
	}
	for i, a := range x.Args {
		fenv.vars[params[i]] = in.eval(a, sc)
		if _, ok := fenv.vars[params[i]].(*runV); ok && f.decl != nil {
			// A helper that inspects a build's result (findSecret(m, ...)).
			return []value{&opaqueV{f.decl.Name.Name + "(...)"}}
		}
	}
	return in.runBody(body, fenv)
}

func (in *interp) runBody(body *ast.BlockStmt, sc *env) (ret []value) {
	defer func() {
		if r := recover(); r != nil {
			if rs, ok := r.(returnSignal); ok {
				ret = rs.vals
				return
			}
			panic(r)
		}
	}()
	in.block(body.List, sc)
	return nil
}

var sprintfVerb = regexp.MustCompile(`%[-+# 0]*[0-9]*(\.[0-9]+)?[svdqx]`)

func (in *interp) pkgCall(name string, x *ast.CallExpr, sc *env) []value {
	switch name {
	case "kusttest_test.MakeHarness":
		in.c.harness = "MakeHarness"
		return []value{&harnessV{"MakeHarness"}}
	case "kusttest_test.MakeEnhancedHarness", "kusttest_test.MakeEnhancedHarnessWithTmpRoot":
		in.c.harness = strings.TrimPrefix(name, "kusttest_test.")
		return []value{&harnessV{in.c.harness}}
	case "kusttest_test.MakeHarnessWithFs":
		in.c.harness = "MakeHarnessWithFs"
		return []value{&harnessV{"MakeHarnessWithFs"}}
	case "kusttest_test.Setup":
		in.c.harness = "Setup"
		return []value{&fsV{}, &dirV{"/tmp"}}
	case "filesys.MakeFsInMemory", "filesys.MakeFsOnDisk", "filesys.MakeEmptyDirInMemory":
		return []value{&fsV{}}
	case "filesys.NewTmpConfirmedDir":
		return []value{&dirV{"/tmp"}, nil}
	case "krusty.MakeDefaultOptions":
		return []value{&optsV{defaultOptions()}}
	case "krusty.MakeKustomizer":
		if len(x.Args) != 1 {
			fail(x.Pos(), "MakeKustomizer arguments")
		}
		o, ok := in.eval(x.Args[0], sc).(*optsV)
		if !ok {
			fail(x.Pos(), "MakeKustomizer with unknown options")
		}
		return []value{&kustomizerV{o.o.clone()}}
	case "konfig.DefaultKustomizationFileName":
		return []value{"kustomization.yaml"}
	case "konfig.RecognizedKustomizationFileNames":
		return []value{&sliceV{[]value{"kustomization.yaml", "kustomization.yml", "Kustomization"}}}
	case "os.ReadFile":
		// Test data files of the krusty package, read as the test reads them.
		p, ok := in.eval(x.Args[0], sc).(string)
		if !ok || filepath.IsAbs(p) {
			fail(x.Pos(), "os.ReadFile of an unknown or absolute path")
		}
		b, err := os.ReadFile(filepath.Join(krustyDir, p))
		if err != nil {
			fail(x.Pos(), "os.ReadFile: %v", err)
		}
		return []value{string(b), nil}
	case "filepath.Join", "path.Join":
		a, ok := in.softStrs(x.Args, sc)
		if !ok {
			return []value{&opaqueV{name}}
		}
		return []value{path.Join(a...)}
	case "filepath.Dir", "path.Dir":
		return []value{path.Dir(in.strs(x.Args, sc)[0])}
	case "filepath.Base", "path.Base":
		return []value{path.Base(in.strs(x.Args, sc)[0])}
	case "fmt.Sprintf":
		if len(x.Args) == 0 {
			fail(x.Pos(), "Sprintf without format")
		}
		format, ok := in.eval(x.Args[0], sc).(string)
		if !ok {
			fail(x.Pos(), "Sprintf format is not a known string")
		}
		var args []interface{}
		for _, a := range x.Args[1:] {
			v := in.eval(a, sc)
			switch v.(type) {
			case string, int, bool:
				args = append(args, v)
			default:
				// Fine as long as the result is not written anywhere.
				return []value{&opaqueV{"fmt.Sprintf with " + describe(v)}}
			}
		}
		if n := len(sprintfVerb.FindAllString(strings.ReplaceAll(format, "%%", ""), -1)); n != len(args) {
			fail(x.Pos(), "Sprintf format has %d verbs for %d arguments", n, len(args))
		}
		return []value{fmt.Sprintf(format, args...)}
	case "strings.ReplaceAll":
		a, ok := in.softStrs(x.Args, sc)
		if !ok {
			return []value{&opaqueV{name}}
		}
		return []value{strings.ReplaceAll(a[0], a[1], a[2])}
	case "strings.Repeat":
		s, ok1 := in.eval(x.Args[0], sc).(string)
		n, ok2 := in.eval(x.Args[1], sc).(int)
		if !ok1 || !ok2 {
			fail(x.Pos(), "strings.Repeat arguments")
		}
		return []value{strings.Repeat(s, n)}
	case "strings.TrimSpace":
		return []value{strings.TrimSpace(in.strs(x.Args, sc)[0])}
	case "strings.TrimPrefix":
		a := in.strs(x.Args, sc)
		return []value{strings.TrimPrefix(a[0], a[1])}
	case "strings.Join":
		s, ok := in.eval(x.Args[0], sc).(*sliceV)
		sep, ok2 := in.eval(x.Args[1], sc).(string)
		if !ok || !ok2 {
			fail(x.Pos(), "strings.Join arguments")
		}
		var parts []string
		for _, e := range s.elems {
			p, ok := e.(string)
			if !ok {
				fail(x.Pos(), "strings.Join of %s", describe(e))
			}
			parts = append(parts, p)
		}
		return []value{strings.Join(parts, sep)}
	case "strings.Contains":
		// An assertion on an error message (if !strings.Contains(err.Error(), "...")).
		if len(x.Args) == 2 {
			if m, ok := in.softEval(x.Args[0], sc).(*errMsgV); ok {
				if s, ok := in.softEval(x.Args[1], sc).(string); ok {
					m.r.expectedErrors = append(m.r.expectedErrors, s)
					return []value{true}
				}
			}
			a, ok1 := in.softEval(x.Args[0], sc).(string)
			b, ok2 := in.softEval(x.Args[1], sc).(string)
			if ok1 && ok2 {
				return []value{strings.Contains(a, b)}
			}
		}
		return []value{&opaqueV{"strings.Contains"}}
	}
	pkg := name[:strings.Index(name, ".")]
	if pkg == "assert" || pkg == "require" {
		in.assertion(name, x, sc)
		return []value{nil}
	}
	if pkg == "kusttest_test" || pkg == "krusty" {
		fail(x.Pos(), "harness function %s", name)
	}
	// Any other function: harmless unless it is handed the harness or the file system.
	in.checkHarmless(name, x, sc)
	return []value{&opaqueV{name + "(...)"}}
}

func (in *interp) checkHarmless(name string, x *ast.CallExpr, sc *env) {
	for _, a := range x.Args {
		switch in.softEval(a, sc).(type) {
		case *harnessV, *fsV, *optsV, *kustomizerV:
			fail(x.Pos(), "%s is given the harness, options or file system", name)
		}
	}
}

// softEval evaluates an expression, turning "not extractable" into an opaque value.
func (in *interp) softEval(e ast.Expr, sc *env) (v value) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(unextractable); ok {
				v = &opaqueV{exprString(e)}
				return
			}
			panic(r)
		}
	}()
	return in.eval(e, sc)
}

func (in *interp) assertion(name string, x *ast.CallExpr, sc *env) {
	fn := name[strings.Index(name, ".")+1:]
	args := make([]value, len(x.Args))
	for i, a := range x.Args {
		args[i] = in.softEval(a, sc)
	}
	errRun := func(v value) *run {
		switch e := v.(type) {
		case *errV:
			return e.r
		case *errMsgV:
			return e.r
		}
		return nil
	}
	setErr := func(r *run, want bool) {
		if r != nil {
			r.expectsError = &want
		}
	}
	if len(args) < 2 {
		return
	}
	switch fn {
	case "NoError", "Nil":
		setErr(errRun(args[1]), false)
	case "Error", "NotNil":
		setErr(errRun(args[1]), true)
	case "ErrorContains", "EqualError", "ErrorIs", "ErrorAs", "Contains", "Regexp", "Equal", "True":
		for i := 1; i < len(args); i++ {
			if r := errRun(args[i]); r != nil {
				setErr(r, true)
				for j := 1; j < len(args); j++ {
					if s, ok := args[j].(string); ok && j != i {
						r.expectedErrors = append(r.expectedErrors, s)
					}
				}
				return
			}
		}
	}
}

func (in *interp) method(recv value, name string, x *ast.CallExpr, sc *env) []value {
	switch r := recv.(type) {
	case *harnessV:
		return in.harnessMethod(r, name, x, sc)
	case *fsV:
		switch name {
		case "WriteFile":
			a := in.strs(x.Args, sc)
			in.write(x.Pos(), a[0], a[1])
			return []value{nil}
		case "Mkdir", "MkdirAll":
			a := in.strs(x.Args, sc)
			in.c.dirs[clean(x.Pos(), a[0])] = true
			return []value{nil}
		}
		fail(x.Pos(), "file system method %s", name)
	case *dirV:
		switch name {
		case "Join":
			return []value{path.Join(r.path, in.strs(x.Args, sc)[0])}
		case "String":
			return []value{r.path}
		}
		fail(x.Pos(), "ConfirmedDir method %s", name)
	case *kustomizerV:
		if name != "Run" || len(x.Args) != 2 {
			fail(x.Pos(), "Kustomizer method %s", name)
		}
		if _, ok := in.eval(x.Args[0], sc).(*fsV); !ok {
			fail(x.Pos(), "Kustomizer.Run on an unknown file system")
		}
		dir, ok := in.eval(x.Args[1], sc).(string)
		if !ok {
			fail(x.Pos(), "Kustomizer.Run directory is not a known string")
		}
		rn := in.addRun(x, dir, r.o, nil)
		return []value{&runV{rn}, &errV{rn}}
	case *errV:
		if name == "Error" {
			return []value{&errMsgV{r.r}}
		}
	case *tV:
		return in.tMethod(name, x, sc)
	case *runV:
		// m.AsYaml(), m.Resources()...: reading the result, not building.
		return []value{&opaqueV{"result." + name}}
	case *opaqueV, *symV, nil:
		for _, a := range x.Args {
			switch in.softEval(a, sc).(type) {
			case *harnessV, *fsV, *optsV:
				fail(x.Pos(), "%s.%s is given the harness", describe(recv), name)
			}
		}
		return []value{&opaqueV{describe(recv) + "." + name}}
	}
	fail(x.Pos(), "method %s of %s", name, describe(recv))
	return nil
}

func (in *interp) tMethod(name string, x *ast.CallExpr, sc *env) []value {
	switch name {
	case "Skip", "Skipf", "SkipNow":
		reason := "t." + name
		if len(x.Args) > 0 {
			if s, ok := in.softEval(x.Args[0], sc).(string); ok {
				reason = s
			}
		}
		panic(skipSignal{reason})
	case "Run":
		if len(x.Args) != 2 {
			fail(x.Pos(), "t.Run arguments")
		}
		n, ok := in.eval(x.Args[0], sc).(string)
		if !ok {
			fail(x.Pos(), "t.Run name is not a known string")
		}
		f, ok := in.eval(x.Args[1], sc).(*funcV)
		if !ok {
			fail(x.Pos(), "t.Run body is not a function literal")
		}
		in.subcase(n, f, x)
		return []value{true}
	case "Fatal", "Fatalf", "Error", "Errorf", "FailNow", "Fail":
		panic(unextractable{fmt.Sprintf("line %d: the test fails here (t.%s) when interpreted", fset.Position(x.Pos()).Line, name)})
	}
	return []value{nil}
}

func (in *interp) harnessMethod(h *harnessV, name string, x *ast.CallExpr, sc *env) []value {
	switch name {
	case "WriteK", "WriteC":
		a := in.strs(x.Args, sc)
		head := "\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
		if name == "WriteC" {
			head = "\napiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
		}
		in.write(x.Pos(), path.Join(a[0], "kustomization.yaml"), head+a[1])
		return nil
	case "WriteF":
		a := in.strs(x.Args, sc)
		in.write(x.Pos(), a[0], a[1])
		return nil
	case "MkDir":
		a := in.strs(x.Args, sc)
		p := path.Join("/", a[0])
		in.c.dirs[clean(x.Pos(), p)] = true
		return []value{p}
	case "GetRoot":
		return []value{"/"}
	case "GetFSys":
		return []value{&fsV{}}
	case "GetT":
		return []value{&tV{}}
	case "GetPluginConfig":
		// The enhanced harness's own plugin loader (LoadAndRunTransformer...), not Run's.
		return []value{&opaqueV{"th.GetPluginConfig()"}}
	case "MakeDefaultOptions", "MakeOptionsPluginsDisabled":
		return []value{&optsV{defaultOptions()}}
	case "MakeOptionsPluginsEnabled":
		o := defaultOptions()
		o.Plugins = true
		return []value{&optsV{o}}
	case "Run", "RunWithErr":
		if len(x.Args) != 2 {
			fail(x.Pos(), "th.%s arguments", name)
		}
		dir, ok := in.eval(x.Args[0], sc).(string)
		if !ok {
			fail(x.Pos(), "th.%s directory is not a known string", name)
		}
		o, ok := in.eval(x.Args[1], sc).(*optsV)
		if !ok {
			fail(x.Pos(), "th.%s with options the extractor does not know", name)
		}
		want := name == "RunWithErr"
		rn := in.addRun(x, dir, o.o, &want)
		if want {
			return []value{&errV{rn}}
		}
		return []value{&runV{rn}}
	case "AssertActualEqualsExpected", "AssertActualEqualsExpectedNoIdAnnotations", "AssertActualEqualsExpectedWithTweak":
		m, ok := in.eval(x.Args[0], sc).(*runV)
		if !ok {
			fail(x.Pos(), "th.%s of something other than a build result", name)
		}
		exp, ok := in.eval(x.Args[len(x.Args)-1], sc).(string)
		if !ok {
			fail(x.Pos(), "th.%s: expected output is not a known string", name)
		}
		exp = strings.TrimPrefix(exp, "\n")
		m.r.expected = &exp
		no := false
		if m.r.expectsError == nil {
			m.r.expectsError = &no
		}
		if name == "AssertActualEqualsExpectedWithTweak" {
			tw := in.softEval(x.Args[1], sc)
			if tw != nil {
				m.r.expectedTweaked = true
			}
		}
		return nil
	case "Reset":
		return nil
	case "ErrIfNoHelm":
		in.c.needs["helm"] = true
		return []value{nil}
	case "PrepBuiltin", "BuildGoPlugin":
		in.c.needs["go-plugin"] = true
		return []value{h}
	case "PrepExecPlugin":
		in.c.needs["exec-plugin"] = true
		return []value{h}
	case "WriteLegacyConfigs":
		a := in.strs(x.Args, sc)
		if legacyConfigs == "" {
			fail(x.Pos(), "th.WriteLegacyConfigs: kustomize's default field specs were not found")
		}
		in.write(x.Pos(), a[0], legacyConfigs)
		return nil
	}
	fail(x.Pos(), "harness method %s", name)
	return nil
}

func clean(pos token.Pos, p string) string {
	c := path.Clean("/" + p)
	if strings.HasPrefix(path.Clean(strings.TrimLeft(p, "/")), "..") {
		fail(pos, "path %s is above the file system root", p)
	}
	return strings.TrimPrefix(c, "/")
}

func (in *interp) write(pos token.Pos, p, content string) {
	c := clean(pos, p)
	if c == "" || c == "." {
		fail(pos, "write to the root itself")
	}
	in.c.files[c] = content
}

func (in *interp) addRun(x *ast.CallExpr, dir string, o *options, expectsErr *bool) *run {
	r := &run{
		dir:          clean(x.Pos(), dir),
		line:         fset.Position(x.Pos()).Line,
		opts:         o.clone(),
		files:        map[string]string{},
		dirs:         map[string]bool{},
		expectsError: expectsErr,
	}
	if r.dir == "" {
		r.dir = "."
	}
	for k, v := range in.c.files {
		r.files[k] = v
	}
	for k := range in.c.dirs {
		r.dirs[k] = true
	}
	in.c.runs = append(in.c.runs, r)
	return r
}

// ---- statements ----------------------------------------------------------------------

func (in *interp) block(list []ast.Stmt, sc *env) {
	for _, s := range list {
		in.stmt(s, sc)
	}
}

func (in *interp) stmt(s ast.Stmt, sc *env) {
	switch x := s.(type) {
	case *ast.ExprStmt:
		if c, ok := x.X.(*ast.CallExpr); ok {
			in.call(c, sc)
			return
		}
		fail(x.Pos(), "statement %s", exprString(x.X))
	case *ast.AssignStmt:
		in.assign(x, sc)
	case *ast.DeclStmt:
		gd, ok := x.Decl.(*ast.GenDecl)
		if !ok {
			fail(x.Pos(), "declaration")
		}
		for _, sp := range gd.Specs {
			switch vs := sp.(type) {
			case *ast.ValueSpec:
				for i, n := range vs.Names {
					var v value
					if i < len(vs.Values) {
						v = in.evalTyped(vs.Values[i], sc, vs.Type)
					} else if vs.Type != nil {
						v = zero(vs.Type)
					}
					sc.vars[n.Name] = v
				}
			case *ast.TypeSpec:
				gtypes["type "+vs.Name.Name] = vs.Type
			}
		}
	case *ast.IfStmt:
		in.ifStmt(x, sc)
	case *ast.BlockStmt:
		in.block(x.List, newEnv(sc))
	case *ast.RangeStmt:
		in.rangeStmt(x, sc)
	case *ast.DeferStmt, *ast.EmptyStmt:
	case *ast.ReturnStmt:
		var vals []value
		for _, r := range x.Results {
			vals = append(vals, in.softEval(r, sc))
		}
		panic(returnSignal{vals})
	case *ast.IncDecStmt:
		id, ok := x.X.(*ast.Ident)
		if !ok {
			fail(x.Pos(), "++/-- of %s", exprString(x.X))
		}
		v, ok := in.eval(id, sc).(int)
		if !ok {
			fail(x.Pos(), "++/-- of a non-int")
		}
		if x.Tok == token.INC {
			v++
		} else {
			v--
		}
		sc.set(id.Name, v)
	default:
		fail(s.Pos(), "statement %T", s)
	}
}

func (in *interp) assign(x *ast.AssignStmt, sc *env) {
	var vals []value
	if len(x.Rhs) == 1 && len(x.Lhs) > 1 {
		c, ok := x.Rhs[0].(*ast.CallExpr)
		if !ok {
			fail(x.Pos(), "multi-value assignment from %s", exprString(x.Rhs[0]))
		}
		vals = in.call(c, sc)
		if len(vals) == 1 {
			if _, ok := vals[0].(*opaqueV); ok {
				for len(vals) < len(x.Lhs) {
					vals = append(vals, &opaqueV{"result"})
				}
			}
		}
		if len(vals) != len(x.Lhs) {
			fail(x.Pos(), "%d values for %d variables", len(vals), len(x.Lhs))
		}
	} else {
		if len(x.Lhs) != len(x.Rhs) {
			fail(x.Pos(), "assignment shape")
		}
		for _, r := range x.Rhs {
			vals = append(vals, in.eval(r, sc))
		}
	}
	for i, l := range x.Lhs {
		v := vals[i]
		if x.Tok == token.ADD_ASSIGN {
			cur, ok1 := in.eval(l, sc).(string)
			add, ok2 := v.(string)
			if !ok1 || !ok2 {
				fail(x.Pos(), "+= on non-strings")
			}
			v = cur + add
		} else if x.Tok != token.DEFINE && x.Tok != token.ASSIGN {
			fail(x.Pos(), "assignment %s", x.Tok)
		}
		switch lt := l.(type) {
		case *ast.Ident:
			if lt.Name == "_" {
				continue
			}
			if x.Tok == token.DEFINE {
				if _, exists := sc.vars[lt.Name]; !exists || true {
					// := redeclares in this scope when the name is new here.
					if _, here := sc.vars[lt.Name]; here {
						sc.vars[lt.Name] = v
					} else {
						sc.vars[lt.Name] = v
					}
				}
			} else if !sc.set(lt.Name, v) {
				fail(x.Pos(), "assignment to unknown %s", lt.Name)
			}
		case *ast.SelectorExpr:
			in.assignField(lt, v, sc)
		case *ast.IndexExpr:
			m, ok := in.eval(lt.X, sc).(*mapV)
			if !ok {
				fail(x.Pos(), "index assignment to a non-map")
			}
			k := in.eval(lt.Index, sc)
			found := false
			for i := range m.keys {
				if m.keys[i] == k {
					m.vals[i], found = v, true
				}
			}
			if !found {
				m.keys = append(m.keys, k)
				m.vals = append(m.vals, v)
			}
		default:
			fail(x.Pos(), "assignment to %s", exprString(l))
		}
	}
}

// assignField handles `opts.X.Y = v` and `tc.field = v`.
func (in *interp) assignField(l *ast.SelectorExpr, v value, sc *env) {
	root := l.X
	var chain []string
	chain = append(chain, l.Sel.Name)
	for {
		s, ok := root.(*ast.SelectorExpr)
		if !ok {
			break
		}
		chain = append([]string{s.Sel.Name}, chain...)
		root = s.X
	}
	base := in.eval(root, sc)
	switch b := base.(type) {
	case *optsV:
		field := strings.Join(chain, ".")
		o := b.o
		sv := describe(v)
		switch field {
		case "LoadRestrictions":
			switch sv {
			case "types.LoadRestrictionsNone":
				o.LoadRestrictions = "None"
			case "types.LoadRestrictionsRootOnly":
				o.LoadRestrictions = "RootOnly"
			default:
				fail(l.Pos(), "LoadRestrictions = %s", sv)
			}
		case "Reorder":
			switch sv {
			case "krusty.ReorderOptionLegacy", "ReorderOptionLegacy":
				o.Reorder = "legacy"
			case "krusty.ReorderOptionNone", "ReorderOptionNone":
				o.Reorder = "none"
			case "krusty.ReorderOptionUnspecified", "ReorderOptionUnspecified":
				o.Reorder = "unspecified"
			default:
				fail(l.Pos(), "Reorder = %s", sv)
			}
		case "AddManagedbyLabel":
			bv, ok := v.(bool)
			if !ok {
				fail(l.Pos(), "AddManagedbyLabel = %s", sv)
			}
			o.ManagedByLabel = bv
		case "PluginConfig.HelmConfig.Enabled":
			o.Helm = v == true
		case "PluginConfig.FnpLoadingOptions.EnableExec":
			o.Exec = v == true
		case "PluginConfig":
			o.Plugins = true
		}
		o.Assignments = append(o.Assignments, field+" = "+sv)
	case *structV:
		if len(chain) != 1 {
			fail(l.Pos(), "nested field assignment")
		}
		b.fields[chain[0]] = v
	case *opaqueV:
		// A field of something the interpreter does not model (th.GetPluginConfig()).
	default:
		fail(l.Pos(), "assignment to a field of %s", describe(base))
	}
}

func isFailCall(s ast.Stmt) bool {
	es, ok := s.(*ast.ExprStmt)
	if !ok {
		return false
	}
	c, ok := es.X.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	switch sel.Sel.Name {
	case "Fatal", "Fatalf", "Error", "Errorf", "FailNow", "Fail", "Skip", "Skipf", "SkipNow":
		return true
	}
	return false
}

func blockFails(b ast.Stmt) bool {
	bs, ok := b.(*ast.BlockStmt)
	if !ok {
		return false
	}
	for _, s := range bs.List {
		if isFailCall(s) {
			return true
		}
	}
	return false
}

func (in *interp) ifStmt(x *ast.IfStmt, sc *env) {
	sc = newEnv(sc)
	if x.Init != nil {
		in.stmt(x.Init, sc)
	}
	// `if err != nil { t.Fatal }` / `if err == nil { t.Fatal }` on a build's error:
	// records what the test expects instead of evaluating.
	if be, ok := x.Cond.(*ast.BinaryExpr); ok && (be.Op == token.EQL || be.Op == token.NEQ) {
		if id, ok := be.Y.(*ast.Ident); ok && id.Name == "nil" {
			lv := in.softEval(be.X, sc)
			var r *run
			switch e := lv.(type) {
			case *errV:
				r = e.r
			}
			if _, op := lv.(*opaqueV); op && blockFails(x.Body) && be.Op == token.NEQ {
				// `if err != nil { t.Fatal }` about a call the interpreter does not model.
				if x.Else != nil {
					in.stmt(x.Else, sc)
				}
				return
			}
			if r != nil || lv == nil {
				if r != nil {
					nonNilBranch, nilBranch := ast.Stmt(x.Body), x.Else
					if be.Op == token.EQL {
						nonNilBranch, nilBranch = x.Else, ast.Stmt(x.Body)
					}
					if blockFails(nonNilBranch) {
						f := false
						r.expectsError = &f
						if nilBranch != nil {
							in.stmt(nilBranch, sc)
						}
						return
					}
					t := true
					r.expectsError = &t
					if nonNilBranch != nil {
						in.stmt(nonNilBranch, sc)
					}
					return
				}
				// A nil error (helpers that cannot fail here, e.g. NewTmpConfirmedDir).
				if be.Op == token.EQL {
					in.block(x.Body.List, sc)
				} else if x.Else != nil {
					in.stmt(x.Else, sc)
				}
				return
			}
		}
	}
	cond := in.softEval(x.Cond, sc)
	b, ok := cond.(bool)
	if !ok {
		if blockFails(x.Body) {
			// `if !assertSomething(...) { t.Fatal }` or `if noDocker { t.Skip }` about
			// a value the interpreter does not model: the test's passing path.
			if x.Else != nil {
				in.stmt(x.Else, sc)
			}
			return
		}
		fail(x.Pos(), "condition %s is not known", exprString(x.Cond))
	}
	if b {
		in.block(x.Body.List, sc)
	} else if x.Else != nil {
		in.stmt(x.Else, sc)
	}
}

func (in *interp) rangeStmt(x *ast.RangeStmt, sc *env) {
	over := in.eval(x.X, sc)
	bind := func(k, v value) {
		inner := newEnv(sc)
		if id, ok := x.Key.(*ast.Ident); ok && id.Name != "_" {
			inner.vars[id.Name] = k
		}
		if id, ok := x.Value.(*ast.Ident); ok && id.Name != "_" {
			inner.vars[id.Name] = v
		}
		in.block(x.Body.List, inner)
	}
	switch o := over.(type) {
	case nil:
	case *opaqueV:
		// Inspecting a build's result (range m.Resources()): nothing to extract, as
		// long as the loop does not build or write.
		ast.Inspect(x.Body, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				if sel, ok := c.Fun.(*ast.SelectorExpr); ok {
					switch sel.Sel.Name {
					case "WriteF", "WriteK", "WriteC", "Run", "RunWithErr", "WriteFile":
						fail(c.Pos(), "loop over %s writes or builds", o.what)
					}
				}
			}
			return true
		})
	case *sliceV:
		for i, e := range o.elems {
			bind(i, e)
		}
	case *mapV:
		for i := range o.keys {
			bind(o.keys[i], o.vals[i])
		}
	default:
		fail(x.Pos(), "range over %s", describe(over))
	}
}

// ---- cases and subcases --------------------------------------------------------------

type emitter struct {
	out      string
	index    []indexEntry
	dirsUsed map[string]bool
	noBuild  []string
}

type indexEntry struct {
	Name          string `json:"name"`
	Dir           string `json:"dir"`
	Unextractable string `json:"unextractable,omitempty"`
	Skipped       string `json:"skipped_upstream,omitempty"`
}

type caseJSON struct {
	Name            string   `json:"name"`
	SourceFile      string   `json:"source_file"`
	Line            int      `json:"line"`
	TestLine        int      `json:"test_line"`
	Harness         string   `json:"harness"`
	BuildDir        string   `json:"build_dir,omitempty"`
	Options         *options `json:"options,omitempty"`
	KustomizeFlags  []string `json:"kustomize_flags"`
	HarnessFlags    []string `json:"harness_flags"`
	Needs           []string `json:"needs"`
	ExpectsError    *bool    `json:"expects_error"`
	ExpectedErrors  []string `json:"expected_error_contains,omitempty"`
	Expected        *string  `json:"expected"`
	ExpectedTweaked bool     `json:"expected_tweaked,omitempty"`
	SkippedUpstream string   `json:"skipped_upstream,omitempty"`
	Unextractable   string   `json:"unextractable,omitempty"`
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (em *emitter) dirFor(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		p = strings.Trim(unsafeChars.ReplaceAllString(p, "_"), "_")
		if p == "" || p == "." || p == ".." {
			p = "_"
		}
		parts[i] = p
	}
	d := strings.Join(parts, "/")
	base := d
	for n := 2; em.dirsUsed[d]; n++ {
		d = fmt.Sprintf("%s_%d", base, n)
	}
	em.dirsUsed[d] = true
	return d
}

func flagsFor(o *options, needs map[string]bool, harness bool) []string {
	var f []string
	if o.LoadRestrictions == "None" {
		f = append(f, "--load-restrictor", "LoadRestrictionsNone")
	}
	if o.Plugins || needs["go-plugin"] || needs["exec-plugin"] {
		f = append(f, "--enable-alpha-plugins")
	}
	if o.Helm || needs["helm"] {
		f = append(f, "--enable-helm")
	}
	if o.Exec {
		f = append(f, "--enable-exec")
	}
	if o.ManagedByLabel {
		f = append(f, "--enable-managedby-label")
	}
	if harness && o.Reorder != "unspecified" {
		f = append(f, "--reorder", o.Reorder)
	}
	if f == nil {
		f = []string{}
	}
	return f
}

func needsList(o *options, needs map[string]bool) []string {
	n := []string{}
	for k := range needs {
		n = append(n, k)
	}
	if o != nil {
		if o.Plugins {
			n = append(n, "plugins")
		}
		if o.Helm {
			n = append(n, "helm")
		}
		if o.Exec {
			n = append(n, "exec")
		}
		if o.ManagedByLabel {
			n = append(n, "managed-by-label")
		}
		if o.LoadRestrictions == "None" {
			n = append(n, "load-restrictions-none")
		}
	}
	sort.Strings(n)
	out := n[:0]
	for i, s := range n {
		if i == 0 || s != n[i-1] {
			out = append(out, s)
		}
	}
	return out
}

func (em *emitter) emit(c *caseCtx, unext string) {
	for i, r := range c.runs {
		name := c.name
		if len(c.runs) > 1 || unext != "" {
			name = fmt.Sprintf("%s#%d", c.name, i+1)
		}
		dir := em.dirFor(name)
		cj := caseJSON{
			Name: name, SourceFile: c.file, Line: r.line, TestLine: c.testLine,
			Harness: c.harness, BuildDir: r.dir, Options: r.opts,
			KustomizeFlags: flagsFor(r.opts, c.needs, false),
			HarnessFlags:   flagsFor(r.opts, c.needs, true),
			Needs:          needsList(r.opts, c.needs),
			ExpectsError:   r.expectsError, ExpectedErrors: r.expectedErrors,
			Expected: r.expected, ExpectedTweaked: r.expectedTweaked,
			SkippedUpstream: c.skipped,
		}
		root := filepath.Join(em.out, dir, "root")
		must(os.MkdirAll(root, 0o755))
		for d := range r.dirs {
			must(os.MkdirAll(filepath.Join(root, d), 0o755))
		}
		must(os.MkdirAll(filepath.Join(root, r.dir), 0o755))
		for p, content := range r.files {
			full := filepath.Join(root, p)
			must(os.MkdirAll(filepath.Dir(full), 0o755))
			must(os.WriteFile(full, []byte(content), 0o644))
		}
		em.writeJSON(dir, cj)
		// The flags again, one per line, for scripts/oracle (bash reads them with mapfile).
		for file, flags := range map[string][]string{"kustomize.flags": cj.KustomizeFlags, "harness.flags": cj.HarnessFlags} {
			text := strings.Join(flags, "\n")
			if text != "" {
				text += "\n"
			}
			must(os.WriteFile(filepath.Join(em.out, dir, file), []byte(text), 0o644))
		}
		em.index = append(em.index, indexEntry{Name: name, Dir: dir, Skipped: c.skipped})
	}
	if unext != "" {
		name := c.name
		if len(c.runs) > 0 {
			name = fmt.Sprintf("%s#%d", c.name, len(c.runs)+1)
		}
		dir := em.dirFor(name)
		em.writeJSON(dir, caseJSON{
			Name: name, SourceFile: c.file, TestLine: c.testLine, Harness: c.harness,
			KustomizeFlags: []string{}, HarnessFlags: []string{}, Needs: needsList(nil, c.needs),
			Unextractable: unext, SkippedUpstream: c.skipped,
		})
		em.index = append(em.index, indexEntry{Name: name, Dir: dir, Unextractable: unext, Skipped: c.skipped})
	}
	if len(c.runs) == 0 && unext == "" && c.subcases == 0 {
		em.noBuild = append(em.noBuild, c.name)
	}
}

func (em *emitter) writeJSON(dir string, cj caseJSON) {
	must(os.MkdirAll(filepath.Join(em.out, dir), 0o755))
	b, err := json.MarshalIndent(cj, "", "  ")
	must(err)
	must(os.WriteFile(filepath.Join(em.out, dir, "case.json"), append(b, '\n'), 0o644))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "krusty-extract:", err)
		os.Exit(1)
	}
}

// runCase interprets body as one case and emits it.
func (in *interp) runCase(body func()) {
	unext := ""
	func() {
		defer func() {
			if r := recover(); r != nil {
				switch s := r.(type) {
				case unextractable:
					unext = s.reason
				case skipSignal:
					in.c.skipped = s.reason
				case returnSignal:
				default:
					unext = fmt.Sprintf("extractor error: %v", r)
				}
			}
		}()
		body()
	}()
	in.out.emit(in.c, unext)
}

func (in *interp) subcase(name string, f *funcV, x *ast.CallExpr) {
	parent := in.c
	parent.subcases++
	c := &caseCtx{
		name: parent.name + "/" + name, file: parent.file, testLine: fset.Position(x.Pos()).Line,
		harness: parent.harness, files: map[string]string{}, dirs: map[string]bool{},
		needs: map[string]bool{},
	}
	for k, v := range parent.files {
		c.files[k] = v
	}
	for k := range parent.dirs {
		c.dirs[k] = true
	}
	for k := range parent.needs {
		c.needs[k] = true
	}
	sub := &interp{c: c, file: in.file, out: in.out}
	sub.runCase(func() {
		fenv := newEnv(f.env)
		for _, p := range f.lit.Type.Params.List {
			for _, n := range p.Names {
				fenv.vars[n.Name] = &tV{}
			}
		}
		sub.runBody(f.lit.Body, fenv)
	})
}

// ---- helpers -------------------------------------------------------------------------

func describe(v value) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return strconv.Quote(x)
	case *symV:
		return x.name
	case *opaqueV:
		return x.what
	}
	return fmt.Sprintf("%T", v)
}

func exprString(e ast.Expr) string {
	switch x := e.(type) {
	case nil:
		return "<nil>"
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return exprString(x.X) + "." + x.Sel.Name
	case *ast.CallExpr:
		return exprString(x.Fun) + "(...)"
	case *ast.BasicLit:
		if len(x.Value) > 30 {
			return x.Value[:30] + "..."
		}
		return x.Value
	case *ast.StarExpr:
		return "*" + exprString(x.X)
	case *ast.UnaryExpr:
		return x.Op.String() + exprString(x.X)
	case *ast.BinaryExpr:
		return exprString(x.X) + " " + x.Op.String() + " " + exprString(x.Y)
	case *ast.ArrayType:
		return "[]" + exprString(x.Elt)
	case *ast.IndexExpr:
		return exprString(x.X) + "[" + exprString(x.Index) + "]"
	}
	return fmt.Sprintf("%T", e)
}

func main() {
	api := flag.String("api", "", "directory of the sigs.k8s.io/kustomize/api module")
	out := flag.String("out", "", "output directory (created; must not exist or be empty)")
	flag.Parse()
	if *api == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: krusty-extract -api DIR -out OUT")
		os.Exit(2)
	}
	krustyDir = filepath.Join(*api, "krusty")
	legacyConfigs = loadLegacyConfigs(filepath.Join(*api, "internal", "konfig", "builtinpluginconsts"))
	paths, err := filepath.Glob(filepath.Join(*api, "krusty", "*_test.go"))
	must(err)
	sort.Strings(paths)
	var files []*ast.File
	for _, p := range paths {
		f, err := parser.ParseFile(fset, p, nil, 0)
		must(err)
		files = append(files, f)
	}
	// Package scope: functions, constants, variables and types of both test packages
	// (krusty and krusty_test). Test names are unique across them.
	for _, f := range files {
		for _, d := range f.Decls {
			switch dd := d.(type) {
			case *ast.FuncDecl:
				if dd.Recv == nil {
					funcs[dd.Name.Name] = dd
				}
			case *ast.GenDecl:
				for _, sp := range dd.Specs {
					switch s := sp.(type) {
					case *ast.ValueSpec:
						for i, n := range s.Names {
							if i < len(s.Values) {
								globals[n.Name] = s.Values[i]
								gtypes[n.Name] = s.Type
							}
						}
					case *ast.TypeSpec:
						gtypes["type "+s.Name.Name] = s.Type
					}
				}
			}
		}
	}
	must(os.MkdirAll(*out, 0o755))
	em := &emitter{out: *out, dirsUsed: map[string]bool{}}
	for i, f := range files {
		rel := filepath.Base(paths[i])
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !strings.HasPrefix(fd.Name.Name, "Test") || fd.Body == nil {
				continue
			}
			c := &caseCtx{
				name: fd.Name.Name, file: rel, testLine: fset.Position(fd.Pos()).Line,
				files: map[string]string{}, dirs: map[string]bool{}, needs: map[string]bool{},
			}
			in := &interp{c: c, file: rel, out: em}
			in.runCase(func() {
				sc := newEnv(nil)
				for _, p := range fd.Type.Params.List {
					for _, n := range p.Names {
						sc.vars[n.Name] = &tV{}
					}
				}
				in.runBody(fd.Body, sc)
			})
		}
	}
	sort.Strings(em.noBuild)
	idx := map[string]interface{}{"cases": em.index, "tests_without_build": em.noBuild}
	b, err := json.MarshalIndent(idx, "", "  ")
	must(err)
	must(os.WriteFile(filepath.Join(*out, "index.json"), append(b, '\n'), 0o644))
	unext := 0
	for _, e := range em.index {
		if e.Unextractable != "" {
			unext++
		}
	}
	fmt.Fprintf(os.Stderr, "krusty-extract: %d cases (%d unextractable), %d tests build nothing\n",
		len(em.index), unext, len(em.noBuild))
}

// loadLegacyConfigs returns what th.WriteLegacyConfigs writes: kustomize's default field
// spec constants (builtinpluginconsts.GetDefaultFieldSpecsAsMap), concatenated. The
// harness iterates a Go map, so its order varies from run to run; this uses the order
// of the map's assignments.
func loadLegacyConfigs(dir string) string {
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return ""
	}
	consts := map[string]ast.Expr{}
	var order []string
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
		if err != nil {
			return ""
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.ValueSpec:
				for i, name := range x.Names {
					if i < len(x.Values) {
						consts[name.Name] = x.Values[i]
					}
				}
			case *ast.FuncDecl:
				if x.Name.Name != "GetDefaultFieldSpecsAsMap" {
					return true
				}
				for _, st := range x.Body.List {
					if as, ok := st.(*ast.AssignStmt); ok {
						if _, ok := as.Lhs[0].(*ast.IndexExpr); ok {
							if id, ok := as.Rhs[0].(*ast.Ident); ok {
								order = append(order, id.Name)
							}
						}
					}
				}
			}
			return true
		})
	}
	var eval func(e ast.Expr) (string, bool)
	eval = func(e ast.Expr) (string, bool) {
		switch x := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(x.Value)
			return s, err == nil
		case *ast.Ident:
			if c, ok := consts[x.Name]; ok {
				return eval(c)
			}
		case *ast.BinaryExpr:
			l, ok1 := eval(x.X)
			r, ok2 := eval(x.Y)
			return l + r, ok1 && ok2 && x.Op == token.ADD
		case *ast.ParenExpr:
			return eval(x.X)
		}
		return "", false
	}
	var out strings.Builder
	for _, name := range order {
		s, ok := eval(&ast.Ident{Name: name})
		if !ok {
			return ""
		}
		out.WriteString(s)
	}
	return out.String()
}

package alert

import (
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/ext"
)

// Cost limits, in CEL's cost units (about one per operation, one per
// element a comprehension visits, one per few bytes a string function
// reads), the numbers Kubernetes uses for CEL in admission and CRD rules.
const (
	// MaxEstimatedCost bounds a rule's estimated worst case over one
	// record, every string, list and map of which is taken to hold
	// EstimateSize bytes or elements: Compile refuses a rule past it. A
	// comprehension inside a comprehension over the record, or a regular
	// expression built from it, is past it.
	MaxEstimatedCost = 10_000_000
	// MaxCost bounds what evaluating a rule over one record may cost at
	// run time: an evaluation that reaches it stops with an error
	// (counted, no alert).
	MaxCost = 1_000_000
)

// EstimateSize is the size (bytes of a string, elements of a list or map)
// Compile's cost estimate takes for every value a rule reads from a
// record. Metadata events are about 1 KB; a request event can be much
// larger, and a rule that iterates over its payload may then reach
// MaxCost at run time.
const EstimateSize = 64 << 10

// Rules is a compiled configuration: what an Engine runs. It is immutable
// and safe for concurrent use.
type Rules struct {
	outputs  []Output
	rules    []*rule
	builtins []Builtin
}

// Outputs returns the configuration's outputs.
func (r *Rules) Outputs() []Output { return r.outputs }

// rule is a compiled Rule.
type rule struct {
	Rule
	prg     cel.Program
	groupBy []path
	// reads says which variables the expression refers to. A rule that
	// reads only event is never evaluated on self and gap records (nor
	// one that reads only self on events): on those its result is
	// constant, found by Compile, and kept in other.
	readsEvent, readsSelf bool
	other                 bool
}

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("event", cel.DynType),
		cel.Variable("self", cel.DynType),
		ext.Strings(),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
	)
})

// Compile compiles c's rules. A rule that does not compile is refused with
// a *KeyError (ErrInvalidRule) naming its key and the rule, and the line
// and column of each problem in its expression; so is one that is not
// boolean, whose estimated cost passes MaxEstimatedCost, or that fails on every
// record of the kind it does not read (its variable is null there).
func Compile(c *Config) (*Rules, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("alert: CEL environment: %w", err)
	}
	rs := &Rules{outputs: c.Outputs, builtins: c.Builtins}
	for _, r := range c.Rules {
		cr, err := compileRule(env, r)
		if err != nil {
			return nil, err
		}
		rs.rules = append(rs.rules, cr)
	}
	return rs, nil
}

func compileRule(env *cel.Env, r Rule) (*rule, error) {
	key := r.key + ".when"
	if r.key == "" {
		key = Key + ".rules[?].when"
	}
	refuse := func(format string, args ...any) error {
		return &KeyError{Key: key, Err: ErrInvalidRule, Reason: fmt.Sprintf("rule %q: ", r.Name) + fmt.Sprintf(format, args...)}
	}
	ast, iss := env.Compile(r.When)
	if iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		return nil, refuse("%s", strings.Join(msgs, "; "))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, refuse("1:1: the expression is of type %s, not bool (compare it: == true)", ast.OutputType())
	}
	est, err := env.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, refuse("estimating its cost: %v", err)
	}
	if est.Max > MaxEstimatedCost {
		return nil, refuse("1:1: its estimated cost, %s over records whose strings, lists and maps hold up to %d bytes or elements, passes the limit of %d (a comprehension inside a comprehension, or a regular expression built from the record, costs that much)", costString(est.Max), EstimateSize, MaxEstimatedCost)
	}
	prg, err := env.Program(ast, cel.CostLimit(MaxCost), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, refuse("%v", err)
	}
	cr := &rule{Rule: r, prg: prg}
	for _, ref := range ast.NativeRep().ReferenceMap() {
		switch ref.Name {
		case "event":
			cr.readsEvent = true
		case "self":
			cr.readsSelf = true
		}
	}
	if cr.readsEvent != cr.readsSelf {
		// Its constant result on the records of the other kind.
		nullVar := "event"
		if cr.readsSelf {
			nullVar = "self"
		}
		out, _, err := prg.Eval(map[string]any{"event": nil, "self": nil})
		if err == nil {
			var ok bool
			if cr.other, ok = out.Value().(bool); !ok {
				err = fmt.Errorf("result %v is not a bool", out)
			}
		}
		if err != nil {
			return nil, refuse("1:1: it fails where %s is null (on every %s): %v; guard it: %s != null && …", nullVar, otherKind(nullVar), err, nullVar)
		}
	}
	for _, p := range r.GroupBy {
		gp, err := parsePath(p)
		if err != nil { // Parse checked them
			return nil, refuse("group_by: %v", err)
		}
		cr.groupBy = append(cr.groupBy, gp)
	}
	return cr, nil
}

func otherKind(nullVar string) string {
	if nullVar == "event" {
		return "self and gap record"
	}
	return "event"
}

func costString(c uint64) string {
	if c > 1<<62 {
		return "unbounded"
	}
	return fmt.Sprint(c)
}

// sizeEstimator sizes every value a rule reads at EstimateSize.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(cost.AstNode) *cost.SizeEstimate {
	return &cost.SizeEstimate{Min: 0, Max: EstimateSize}
}

// EstimateCallCost sizes what optional selection (event.?a.?b) and its
// alternatives (orValue, or, value) return at EstimateSize too: left to
// the standard model, a value read through an optional has no size, and
// anything that iterates over it is unbounded.
func (sizeEstimator) EstimateCallCost(function, _ string, _ *cost.AstNode, _ []cost.AstNode) *cost.CallEstimate {
	switch function {
	case operators.OptSelect, "orValue", "or", "value":
		return &cost.CallEstimate{CostEstimate: cost.CostEstimate{Min: 1, Max: 1}, ResultSize: &cost.SizeEstimate{Min: 0, Max: EstimateSize}}
	}
	return nil
}

// Package bench measures how long rime takes to plan an app, so that the
// cost of reasoning in CUE stays visible as apps and catalogues grow.
//
// The benchmarks plan generated apps of 1, 10, 50 and 200 data classes
// against two catalogues: the 14 built-in protocols, and a synthetic one ten
// times larger (ten renamed copies of each built-in spec, with costs that
// differ so that the planner has a real choice). Planning time is loading the
// app plus engine.Plan, with the loader and catalogue built once beforehand,
// as a long-running server would. Beside it stands a bare CUE evaluation of
// the same inputs: parse the app and close it against #App, and compile and
// validate every protocol spec of the catalogue against #Protocol, with no
// planning at all. The ratio between the two is what rime's own reasoning
// adds on top of evaluating the CUE it is given. The baseline errs in the
// planner's favour: it compiles the catalogue's specs on every run, which
// timed planning does not (the catalogue is loaded once), and that is
// about half of it for the built-in catalogue and most of it for the
// synthetic one. It does not evaluate #Facts, the theorems or the goals,
// which are the planner's own work.
//
// Target: 50 classes plan in under a second, at most three times the bare
// CUE evaluation. The benchmarks print this but never assert it, since
// timings depend on the machine.
//
// Run them with
//
//	make bench
//
// which runs
//
//	go test ./bench/ -run '^$' -bench . -benchtime 3x
//
// BenchmarkPlan and BenchmarkBareCUE report each case in the usual
// benchmark format; BenchmarkPlanningReport prints both side by side as a
// table, each cell the median of the -benchtime runs.
package bench

package spec

// RuleBatchSourceForTest exposes ruleBatchSource to the external tests.
var RuleBatchSourceForTest = ruleBatchSource

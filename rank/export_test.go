package rank

// SetTestHookEncode makes f run on a worker before each table is encoded,
// so that tests can hold the encoding back. Call it before the first
// WriteScenario.
func SetTestHookEncode(w *Writer, f func(scenario int)) { w.testHookEncode = f }

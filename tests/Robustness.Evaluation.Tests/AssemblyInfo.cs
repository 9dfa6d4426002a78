// The fixture network is shared by all tests (and wrapped by the sanity-check models); 2 cores gain nothing from
// running evaluations in parallel, and serial runs keep per-thread dispose scopes and module modes simple.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

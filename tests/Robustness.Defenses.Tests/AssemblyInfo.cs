// Training draws from libtorch's global generator (initialisation after manual_seed, dropout, checkpointed with exact
// resume), and manual_seed resets it for the whole process: test classes running side by side would change each other's
// weights, so that a resumed run no longer reproduces the uninterrupted one. The classes of this project run one at a time.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]

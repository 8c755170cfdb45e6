// Package launch holds only tests: they launch the product the way HPC
// users do and check what the merge makes of it.
//
//   - scripts/slurm/submit.sh, run.sbatch and merge.sbatch on a real
//     single-node SLURM cluster started by scripts/slurm/local-cluster.sh
//     (munged, slurmctld and slurmd from Debian's slurm-wlm): a complete
//     run, a rank killed mid-run (the merge job reruns exactly the missing
//     scenarios), the same in a study with training, the rank killed after
//     its training (the rerun, on fewer ranks, skips the finished
//     training) and during it (the rerun resumes it on its own world
//     size), and a preempted job (TERM to the batch shell, then
//     `scontrol requeue`);
//   - OpenMPI's mpirun -np 4, outside SLURM and inside an sbatch allocation
//     (where every process sees SLURM_PROCID=0).
//
// Every merged result is compared with an uninterrupted single-process run
// of the same seed: the integrity indexes (_files.csv, one size and XXH64
// per data file) must be byte-identical.
//
// The cluster needs root (its daemons run as root, munged as the munge
// user). scripts/install-test-tools.sh installs slurm-wlm, munge and
// openmpi-bin with apt-get when missing. Without them, or without root, the
// tests skip loudly, except with CI=true, where that is a failure.
//
// Each test run has a cluster of its own, so that two runs on one host at
// once (two clones, two scripts/test.sh), or a cluster a user started with
// local-cluster.sh, do not collide: it lives in $HYDROSHARD_TEST_SLURM_DIR
// (scripts/test.sh makes a fresh one per run with mktemp -d; without it a
// temp directory of the test binary), with its own munge key and socket,
// ClusterName hydroshard-test-PID, and two TCP ports that were free on
// 127.0.0.1 when chosen (the kernel's pick for port 0), passed to
// local-cluster.sh as SLURMCTLD_PORT and SLURMD_PORT. Should another
// process take a port before the daemon binds it, local-cluster.sh up
// exits 75 and TestMain stops what was started and retries with new ports
// (at most 5 attempts). TestMain stops the cluster on exit and on
// SIGINT/SIGTERM, and scripts/test.sh's EXIT trap stops the cluster in the
// directory it made, i.e. this run's, in case the test binary itself was
// killed (go test's timeout).
//
// simrank is built with -tags faultinject: only such a binary obeys
// HYDROSHARD_FAULT, with which the TestSubmitRankKilled* tests kill a rank.
package launch

// Package launch holds only tests: they launch the product the way HPC
// users do and check what the merge makes of it.
//
//   - scripts/slurm/submit.sh, run.sbatch and merge.sbatch on a real
//     single-node SLURM cluster started by scripts/slurm/local-cluster.sh
//     (munged, slurmctld and slurmd from Debian's slurm-wlm): a complete
//     run, a rank killed mid-run (the merge job reruns exactly the missing
//     scenarios), and a preempted job (TERM to the batch shell, then
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
// tests skip loudly, except with CI=true, where that is a failure. The
// cluster lives in $HYDROSHARD_TEST_SLURM_DIR (default a temp directory)
// on its own ports (6927/6928), so a cluster a user started with
// local-cluster.sh is left alone; TestMain stops it on exit and on
// SIGINT/SIGTERM, and scripts/test.sh stops it again in a trap in case the
// test binary itself was killed.
package launch

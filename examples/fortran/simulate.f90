! simulate.f90: a solver rank in Fortran that writes its simulation
! scenarios with hydroshard, under mpirun (or srun): examples/c/simulate.c
! in Fortran 2008, through the module hydroshard (include/hydroshard.f90,
! iso_c_binding) and plain arrays (hydroshard_table).
!
!   scripts/build-lib.sh DIR && mkdir -p DIR/mod
!   mpifort -O2 -ffp-contract=off -J DIR/mod DIR/include/hydroshard.f90 examples/fortran/simulate.f90 \
!       -L DIR/lib -lhydroshard -Wl,-rpath,DIR/lib -o simulate
!   mpirun -np 4 ./simulate --out OUT --case CASE --scenarios N
!   merge-shards OUT
!
! (-J: where the module's hydroshard.mod goes. Static: DIR/lib/libhydroshard.a
! -lpthread -lm instead of -L... -lhydroshard.)
!
! Flags, the same as simulate.c's (scripts/slurm/submit.sh --program runs
! either as PROG --out OUT ARGS..., a rerun job with --scenarios-from FILE
! appended):
!   --out DIR              the study's directory (required)
!   --case CASE            a case.json, its directory, or "tiny", "demo" (required)
!   --scenarios N          the run's count of scenarios (required)
!   --scenarios-from FILE  a rerun list, as merge-shards --rerun-list writes
!                          it and scripts/slurm passes to a rerun job: only
!                          those scenarios (hydroshard_set_string "rerun_file")
!   --identity env|mpi     without it: hydroshard detects the rank and the
!                          world size from the launcher's environment and
!                          the program checks them against MPI_COMM_WORLD;
!                          env: the same detection without MPI at all (no
!                          MPI_Init: under srun, where OpenMPI may not be
!                          wired to SLURM); mpi: MPI's rank and size, given
!                          with hydroshard_set_identity (simulate.c's default)
!   --workers N            encoding workers per rank (default 1)
!   --borrow, --mutate     below
! simulate.c's --arrow and --bench are not here (usage error).
!
! It writes the same values as simulate.c (so that the two studies can be
! compared byte for byte), with two differences on purpose:
!   - by default it does not call hydroshard_set_identity: hydroshard_open
!     detects the rank and the world size from the launcher's environment
!     (OpenMPI's variables under mpirun, PMI/PMIx or SLURM's under srun);
!     the program checks that they agree with MPI_COMM_WORLD and prints
!     them (--identity mpi: as simulate.c does by default);
!   - no --arrow: Arrow is not for Fortran.
! So its metadata.json says "solver": "simulate.f90" and "backend":
! "openmpi" (under mpirun; "explicit" with --identity mpi) where
! simulate.c's says "simulate.c" and "explicit"; every Parquet file and _files.csv are the same bytes.
!
! Each rank asks hydroshard which scenarios it still owns (a requeued rank
! gets only what its earlier attempts did not commit), "simulates" each one
! and writes every table of the case. The values are a fixed function of
! (scenario, row, column), with row counted from 0:
!   rows: costs one per stage (block_id left out: null); inflow_lags one per
!         (stage, hydro, lag 1..order); the others one per (stage, block,
!         entity), entity fastest, entities in case order;
!   stage_id, block_id, lag_index, the entity id: what the row is;
!   int8 columns (codes): 0; bool columns: mod(row + scenario, 2);
!   double column j (its 0-based index among the columns given):
!         mod(scenario*7919 + row*131 + j*17, 100003) / 8.0d0,
!         null when nullable and mod(row + j, 5) == 0.
!
! --mutate sets costs.total_cost of the first row of every scenario to -1.5
! after hydroshard_table returns: with the default (copied) arrays the file
! does not show it, with --borrow it does (the arrays are read in place).
!
! Exit codes: 0 done, 1 an error (hydroshard_errmsg is printed), 2 bad
! arguments (a required flag missing, an unknown one: the usage on stderr),
! 3 interrupted (SIGTERM/SIGINT: the rank closed as interrupted; requeue
! the job and the next attempt resumes).
program simulate
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: output_unit, error_unit
  use mpi
  use hydroshard
  implicit none

  integer, parameter :: NTABLES = 10
  character(len=18), parameter :: table_names(NTABLES) = [character(len=18) :: 'costs', 'hydros', &
      'thermals', 'exchanges', 'buses', 'pumping_stations', 'contracts', 'non_controllables', &
      'inflow_lags', 'violations/generic']

  ! One input column of a table, as hydroshard_table_columns describes it.
  type :: column_t
    character(len=:), allocatable :: name
    character(len=:), allocatable :: type ! int32, int8, double, bool
    logical :: nullable = .false.
  end type column_t

  ! One table of the case: its input columns, its rows and entity ids.
  type :: table_t
    character(len=:), allocatable :: entity
    type(column_t), allocatable :: cols(:)
    character(len=:), allocatable :: names ! the column list given to hydroshard_table
    integer(c_int64_t) :: rows = 0
    integer(c_int32_t), allocatable :: ids(:)
  end type table_t

  ! The arrays of one column of one scenario's table: only the one of its
  ! type is allocated (a bool column uses i8, 0/1), valid for a nullable one.
  type :: buffer_t
    real(c_double), allocatable :: f64(:)
    integer(c_int32_t), allocatable :: i32(:)
    integer(c_int8_t), allocatable :: i8(:)
    integer(c_int8_t), allocatable :: valid(:)
  end type buffer_t

  type :: filled_t
    type(buffer_t), allocatable :: col(:)
  end type filled_t

  interface
    ! C's exit: the exit codes above, without gfortran's "STOP n" line.
    subroutine c_exit(status) bind(c, name='exit')
      import :: c_int
      integer(c_int), value :: status
    end subroutine c_exit
  end interface

  type(c_ptr) :: h
  type(table_t), allocatable :: tabs(:)
  ! The scenarios' arrays. With --borrow the library reads them until
  ! hydroshard_flush returns, so every table of every scenario gets its own
  ! element, sized once before the loop: it is never reallocated (which
  ! would move the arrays) nor reused before the flush. Without --borrow
  ! hydroshard_table copies them and one element is reused.
  type(filled_t), allocatable, target :: filled(:)
  type(c_ptr), allocatable :: dptr(:), vptr(:)
  integer(c_int32_t), allocatable :: todo(:)
  integer(c_int32_t) :: none(1) = 0 ! for the calls with cap 0: nothing is written to it
  character(len=:), allocatable :: out, casepath, rerun, identity, arg, name
  type(column_t), allocatable :: listed(:)
  integer(c_int) :: rc, scenarios, workers, s, me, world
  integer(c_int64_t) :: n, k, stages, blocks, lags, nids, slot
  integer :: ierr, mpi_me, mpi_world, i, j, ntab, total_col, nargs
  logical :: borrow, mutate, use_mpi, has_value

  ! The flags (see the top comment), before MPI: a usage error needs none.
  use_mpi = .false.
  borrow = .false.
  mutate = .false.
  scenarios = 0
  workers = 1
  out = ''
  casepath = ''
  rerun = ''
  identity = '' ! none given: detected from the environment, checked against MPI
  nargs = command_argument_count()
  i = 1
  do while (i <= nargs)
    arg = argument(i)
    has_value = i < nargs
    select case (arg)
    case ('--borrow')
      borrow = .true.
    case ('--mutate')
      mutate = .true.
    case ('--out', '--case', '--scenarios', '--scenarios-from', '--identity', '--workers')
      if (.not. has_value) call usage(arg // ' needs a value')
      i = i + 1
      select case (arg)
      case ('--out')
        out = argument(i)
      case ('--case')
        casepath = argument(i)
      case ('--scenarios')
        scenarios = positive(arg, argument(i))
      case ('--scenarios-from')
        rerun = argument(i)
      case ('--identity')
        identity = argument(i)
        if (identity /= 'env' .and. identity /= 'mpi') call usage('--identity ' // identity // ': env or mpi')
      case default ! --workers
        workers = positive(arg, argument(i))
      end select
    case ('--arrow', '--bench')
      call usage(arg // ' is simulate.c''s only (no Arrow, no bench in Fortran)')
    case default
      call usage('unknown argument ' // arg)
    end select
    i = i + 1
  end do
  if (len(out) == 0) call usage('--out DIR is required')
  if (len(casepath) == 0) call usage('--case CASE is required')
  if (scenarios <= 0) call usage('--scenarios N is required')

  ! --identity env runs without MPI (under srun, Debian's OpenMPI, built
  ! without SLURM's PMI, cannot initialise; hydroshard reads SLURM's
  ! variables itself).
  use_mpi = identity /= 'env'
  mpi_me = -1
  mpi_world = -1
  if (use_mpi) then
    call MPI_Init(ierr)
    call MPI_Comm_rank(MPI_COMM_WORLD, mpi_me, ierr)
    call MPI_Comm_size(MPI_COMM_WORLD, mpi_world, ierr)
  end if
  if (hydroshard_abi_version() /= HYDROSHARD_MODULE_ABI_VERSION) then
    write (error_unit, '(a,i0,a,i0)') 'simulate: libhydroshard ABI ', hydroshard_abi_version(), &
        ', this program was built for ', HYDROSHARD_MODULE_ABI_VERSION
    call finish(1_c_int)
  end if

  h = hydroshard_new()
  if (.not. c_associated(h)) call die('hydroshard_new', HYDROSHARD_EINTERNAL)
  ! Without --identity mpi, no hydroshard_set_identity: hydroshard_open
  ! detects the identity from the launcher's environment.
  if (identity == 'mpi') then
    call check('hydroshard_set_identity', hydroshard_set_identity(h, int(mpi_me, c_int), int(mpi_world, c_int)))
  end if
  if (len(rerun) > 0) call check('rerun_file', hydroshard_set_string(h, hs_c('rerun_file'), hs_c(rerun)))
  call check('hydroshard_set_case', hydroshard_set_case(h, hs_c(casepath)))
  call check('scenarios', hydroshard_set_int(h, hs_c('scenarios'), int(scenarios, c_int64_t)))
  call check('workers', hydroshard_set_int(h, hs_c('workers'), int(workers, c_int64_t)))
  call check('borrow', hydroshard_set_int(h, hs_c('borrow'), merge(1_c_int64_t, 0_c_int64_t, borrow)))
  call check('solver', hydroshard_set_string(h, hs_c('solver'), hs_c('simulate.f90')))
  call check('hydroshard_open', hydroshard_open(h, hs_c(out)))
  call check('hydroshard_handle_signals', hydroshard_handle_signals(h))
  me = hydroshard_rank_id(h)
  world = hydroshard_world(h)
  if (use_mpi .and. (me /= mpi_me .or. world /= mpi_world)) then
    write (error_unit, '(a,4(i0,a))') 'simulate: the launcher says rank ', me, ' of ', world, &
        ', MPI_COMM_WORLD says ', mpi_me, ' of ', mpi_world, ''
    call finish(1_c_int)
  end if

  n = hydroshard_remaining(h, none, 0_c_int64_t)
  if (n < 0) call die('hydroshard_remaining', HYDROSHARD_EINVAL)
  allocate (todo(max(n, 1_c_int64_t)))
  if (hydroshard_remaining(h, todo, n) /= n) call die('hydroshard_remaining', HYDROSHARD_EINVAL)

  ! The tables of the case, their columns, rows and entity ids, once.
  stages = case_int('stages')
  blocks = case_int('blocks')
  lags = case_int('inflow_lag_order')
  allocate (tabs(NTABLES))
  ntab = 0
  total_col = 0
  do i = 1, NTABLES
    name = trim(table_names(i))
    nids = hydroshard_case_ids(h, hs_c(name), none, 0_c_int64_t)
    if (name /= 'costs' .and. (nids <= 0 .or. (name == 'inflow_lags' .and. lags == 0))) cycle
    if (nids < 0) call die('hydroshard_case_ids', HYDROSHARD_EINVAL)
    ntab = ntab + 1
    associate (t => tabs(ntab))
      t%entity = name
      allocate (t%ids(max(nids, 1_c_int64_t)))
      if (hydroshard_case_ids(h, hs_c(name), t%ids, nids) /= nids) call die('hydroshard_case_ids', HYDROSHARD_EINVAL)
      if (name == 'costs') then
        t%rows = stages
      else if (name == 'inflow_lags') then
        t%rows = stages * nids * lags
      else
        t%rows = stages * blocks * nids
      end if
      call parse_columns(hs_table_columns(name), listed)
      if (size(listed) == 0) call die('hydroshard_table_columns(' // name // ')', HYDROSHARD_EINVAL)
      ! costs rows are per stage: costs.block_id is left out (all null)
      allocate (t%cols(count([(name /= 'costs' .or. listed(j)%name /= 'block_id', j = 1, size(listed))])))
      k = 0
      do j = 1, size(listed)
        if (name == 'costs' .and. listed(j)%name == 'block_id') cycle
        k = k + 1
        t%cols(k) = listed(j)
        if (name == 'costs' .and. listed(j)%name == 'total_cost') total_col = int(k)
      end do
      t%names = t%cols(1)%name
      do j = 2, size(t%cols)
        t%names = t%names // ',' // t%cols(j)%name
      end do
    end associate
  end do

  if (borrow) then
    allocate (filled(n * int(ntab, c_int64_t)))
  else
    allocate (filled(1))
  end if
  do k = 1, n
    if (hydroshard_interrupted(h) /= 0) exit
    s = todo(k)
    do i = 1, ntab
      slot = 1
      if (borrow) slot = (k - 1) * int(ntab, c_int64_t) + int(i, c_int64_t)
      call fill(tabs(i), filled(slot), s)
      associate (t => tabs(i), f => filled(slot))
        ! The columns' addresses: c_loc of the target arrays.
        allocate (dptr(size(t%cols)), vptr(size(t%cols)))
        do j = 1, size(t%cols)
          select case (t%cols(j)%type)
          case ('double')
            dptr(j) = c_loc(f%col(j)%f64)
          case ('int32')
            dptr(j) = c_loc(f%col(j)%i32)
          case default ! int8, bool
            dptr(j) = c_loc(f%col(j)%i8)
          end select
          if (allocated(f%col(j)%valid)) then
            vptr(j) = c_loc(f%col(j)%valid)
          else
            vptr(j) = c_null_ptr
          end if
        end do
        rc = hydroshard_table(h, s, hs_c(t%entity), t%rows, hs_c(t%names), dptr, vptr)
        if (rc /= HYDROSHARD_OK) call die('hydroshard_table', rc)
        deallocate (dptr, vptr)
        ! read in place with --borrow only: the file then shows it
        if (mutate .and. t%entity == 'costs' .and. total_col > 0) f%col(total_col)%f64(0) = -1.5d0 ! row 0
      end associate
    end do
    rc = hydroshard_write_scenario(h, s)
    if (rc == HYDROSHARD_ECOMMITTED) cycle ! an earlier attempt did it
    if (rc == HYDROSHARD_EINTERRUPTED) exit
    if (rc /= HYDROSHARD_OK) call die('hydroshard_write_scenario', rc)
  end do
  if (hydroshard_interrupted(h) /= 0) call interrupted()
  rc = hydroshard_flush(h)
  if (rc == HYDROSHARD_EINTERRUPTED) call interrupted()
  if (rc /= HYDROSHARD_OK) call die('hydroshard_flush', rc)
  ! Only now may the borrowed arrays go.
  deallocate (filled)
  call check('hydroshard_close', hydroshard_close(h))
  call hydroshard_free(h)
  select case (identity)
  case ('mpi')
    name = ' (from MPI): '
  case ('env')
    name = ' (from the launcher, without MPI): '
  case default
    name = ' (from the launcher): '
  end select
  if (borrow) then
    write (output_unit, '(a,i0,a,i0,a,i0,a)') 'rank ', me, ' of ', world, name, n, ' scenarios written (arrays, borrowed)'
  else
    write (output_unit, '(a,i0,a,i0,a,i0,a)') 'rank ', me, ' of ', world, name, n, ' scenarios written (arrays)'
  end if
  if (use_mpi) call MPI_Finalize(ierr)

contains

  ! The i-th command-line argument, at its length.
  function argument(i) result(a)
    integer, intent(in) :: i
    character(len=:), allocatable :: a
    integer :: length
    call get_command_argument(i, length=length)
    allocate (character(len=length) :: a)
    if (length > 0) call get_command_argument(i, a)
  end function argument

  ! The value of flag, a positive integer (digits only), or a usage error.
  function positive(flag, text) result(v)
    character(len=*), intent(in) :: flag, text
    integer(c_int) :: v
    integer :: ios
    v = 0
    if (len(text) == 0 .or. len(text) > 9 .or. verify(text, '0123456789') /= 0) then
      call usage(flag // ' ' // text // ': not a positive integer')
    end if
    read (text, '(i9)', iostat=ios) v
    if (ios /= 0 .or. v <= 0) call usage(flag // ' ' // text // ': not a positive integer')
  end function positive

  subroutine usage(why)
    character(len=*), intent(in) :: why
    if (len(why) > 0) write (error_unit, '(a)') 'simulate: ' // why
    write (error_unit, '(a)') 'usage: simulate --out DIR --case CASE --scenarios N [--scenarios-from FILE] [--identity env|mpi]'
    write (error_unit, '(a)') '                [--workers N] [--borrow] [--mutate]'
    call finish(2_c_int)
  end subroutine usage

  ! Leaves with status: after MPI_Finalize (when MPI was initialised) for
  ! 0, 2 and 3, at once for 1 (as simulate.c's exit(1): mpirun then
  ! reports the failed rank).
  subroutine finish(status)
    integer(c_int), intent(in) :: status
    integer :: e
    flush (output_unit)
    flush (error_unit)
    if (status /= 1 .and. use_mpi) call MPI_Finalize(e)
    call c_exit(status)
  end subroutine finish

  subroutine die(what, code)
    character(len=*), intent(in) :: what
    integer(c_int), intent(in) :: code
    write (error_unit, '(a,i0,a)') 'simulate: ' // what // ': error ', code, ': ' // hs_errmsg(h)
    call finish(1_c_int)
  end subroutine die

  subroutine check(what, code)
    character(len=*), intent(in) :: what
    integer(c_int), intent(in) :: code
    if (code /= HYDROSHARD_OK) call die(what, code)
  end subroutine check

  ! Stops a rank that a signal interrupted: what is queued is committed
  ! when it can be, the next attempt resumes.
  subroutine interrupted()
    integer(c_int) :: e
    write (error_unit, '(a,i0,a)') 'simulate: rank ', me, ' interrupted'
    e = hydroshard_close_interrupted(h, hs_c('signal'))
    call hydroshard_free(h)
    call finish(3_c_int)
  end subroutine interrupted

  function case_int(what) result(v)
    character(len=*), intent(in) :: what
    integer(c_int64_t) :: v
    v = hydroshard_case_int(h, hs_c(what))
    if (v < 0) call die('hydroshard_case_int(' // what // ')', HYDROSHARD_EINVAL)
  end function case_int

  ! Parses "name:type[?],..." into cols.
  subroutine parse_columns(text, cols)
    character(len=*), intent(in) :: text
    type(column_t), allocatable, intent(out) :: cols(:)
    integer :: p, e, colon, ncol
    ncol = 0
    if (len(text) > 0) ncol = count([(text(p:p) == ',', p = 1, len(text))]) + 1
    allocate (cols(ncol))
    p = 1
    do ncol = 1, size(cols)
      e = index(text(p:), ',')
      if (e == 0) then
        e = len(text)
      else
        e = p + e - 2
      end if
      colon = p + index(text(p:e), ':') - 1
      cols(ncol)%name = text(p:colon - 1)
      cols(ncol)%nullable = text(e:e) == '?'
      if (cols(ncol)%nullable) then
        cols(ncol)%type = text(colon + 1:e - 1)
      else
        cols(ncol)%type = text(colon + 1:e)
      end if
      p = e + 2
    end do
  end subroutine parse_columns

  ! Computes the table's rows for scenario sc (see the top comment) into f.
  subroutine fill(t, f, sc)
    type(table_t), intent(in) :: t
    type(filled_t), intent(inout) :: f
    integer(c_int), intent(in) :: sc
    integer(c_int64_t) :: r, stage, block, entity, lag, nid, jj, s64
    integer :: jc
    logical :: costs, lagt
    integer(c_int32_t) :: v

    if (allocated(f%col)) deallocate (f%col) ! and every array in it
    allocate (f%col(size(t%cols)))
    do jc = 1, size(t%cols)
      select case (t%cols(jc)%type)
      case ('double')
        allocate (f%col(jc)%f64(0:t%rows - 1))
      case ('int32')
        allocate (f%col(jc)%i32(0:t%rows - 1))
      case ('int8', 'bool')
        allocate (f%col(jc)%i8(0:t%rows - 1))
      case default
        call die('hydroshard_table_columns(' // t%entity // '): column ' // t%cols(jc)%name // &
            ' of unknown type ' // t%cols(jc)%type, HYDROSHARD_EINVAL)
      end select
      if (t%cols(jc)%nullable) allocate (f%col(jc)%valid(0:t%rows - 1))
    end do

    costs = t%entity == 'costs'
    lagt = t%entity == 'inflow_lags'
    nid = size(t%ids, kind=c_int64_t)
    s64 = int(sc, c_int64_t)
    do r = 0, t%rows - 1
      block = 0
      entity = 0
      lag = 0
      if (costs) then
        stage = r
      else if (lagt) then
        stage = r / (nid * lags)
        entity = mod(r / lags, nid)
        lag = mod(r, lags) + 1
      else
        stage = r / (blocks * nid)
        block = mod(r / nid, blocks)
        entity = mod(r, nid)
      end if
      do jc = 1, size(t%cols)
        jj = int(jc - 1, c_int64_t) ! the column's index counted from 0, as in C
        associate (c => t%cols(jc), b => f%col(jc))
          select case (c%type)
          case ('double')
            b%f64(r) = real(mod(s64 * 7919 + r * 131 + jj * 17, 100003_c_int64_t), c_double) / 8.0d0
            if (c%nullable) b%valid(r) = merge(0_c_int8_t, 1_c_int8_t, mod(r + jj, 5_c_int64_t) == 0)
          case ('int32')
            if (c%name == 'stage_id') then
              v = int(stage, c_int32_t)
            else if (c%name == 'block_id') then
              v = int(block, c_int32_t)
            else if (c%name == 'lag_index') then
              v = int(lag, c_int32_t)
            else
              v = t%ids(entity + 1) ! the entity id column
            end if
            b%i32(r) = v
            if (c%nullable) b%valid(r) = 1_c_int8_t
          case ('int8')
            b%i8(r) = 0_c_int8_t
          case default ! bool
            b%i8(r) = int(mod(r + s64, 2_c_int64_t), c_int8_t)
          end select
        end associate
      end do
    end do
  end subroutine fill

end program simulate

! hydroshard.f90: the Fortran 2008 module `hydroshard`, the C API of
! hydroshard's rank writer (include/hydroshard.h) for Fortran programs,
! through iso_c_binding and plain arrays.
!
! Compile it with the program that uses it (the .mod file goes to -J DIR):
!
!   mpifort -c include/hydroshard.f90              (or: gfortran -c ...)
!   mpifort -O2 my_solver.f90 hydroshard.o -L DIR/lib -lhydroshard -Wl,-rpath,DIR/lib
!
! (or link DIR/lib/libhydroshard.a -lpthread -lm instead of the .so). The
! module needs no MPI: only the program's own MPI calls do.
!
! This module is a thin layer over the C API: one bind(c) interface per
! function of hydroshard.h, with the same name, the same arguments and the
! same results, so the rules are those the header states and this file does
! not repeat them: who owns which buffer (BUFFERS: arrays are copied, or
! borrowed until hydroshard_flush or a close returns with "borrow" set),
! errors (ERRORS: an integer(c_int) return code, HYDROSHARD_OK or a
! HYDROSHARD_E* code, the message in hydroshard_errmsg), threads (THREADS),
! signals and MPI (SIGNALS AND MPI). Read the header (and docs/capi.md).
! hydroshard_table_arrow is left out: Arrow is not for Fortran.
!
! The mapping from C:
!   hydroshard_rank *           type(c_ptr), by value (the opaque handle; from
!                               hydroshard_new, c_null_ptr when memory is out)
!   const char * (input)        character(kind=c_char), dimension(*): the
!                               caller appends c_null_char: hs_c('tiny')
!   const char * (result)       type(c_ptr) to a C string: hs_string(p), or
!                               hs_errmsg(h), hs_version(), hs_table_columns(e)
!                               copy it into a Fortran string
!   int, int64_t, double        integer(c_int), integer(c_int64_t),
!                               real(c_double), by value; integer arguments
!                               must have exactly that kind (pass
!                               int(n, c_int64_t) or 12_c_int64_t)
!   uint32_t, uint64_t          integer(c_int32_t), integer(c_int64_t): the
!                               same bits (Fortran has no unsigned integers)
!   int32_t *, double *, ...    an array of that kind, passed by reference:
!                               an array of at least the size the call reads
!                               or writes; with a count of 0 any array does
!                               (a zero-size one too): nothing is touched
!   uint8_t * (bytes, 0/1)      integer(c_int8_t) array
!   const void *const *data     type(c_ptr) array: data(j) = c_loc(column j)
!   const uint8_t *const *valid type(c_ptr) array: valid(j) = c_loc(bytes of
!                               column j), or c_null_ptr (every value valid);
!                               an array of c_null_ptr is C's valid == NULL
!   states_at_generation        type(c_ptr), by value: c_null_ptr (none) or
!                               c_loc of the first element
!
! Fortran names are not case-sensitive, so HYDROSHARD_ABI_VERSION (the
! header's macro) and hydroshard_abi_version (the function) cannot both be
! names here: the function keeps its C name and the macro is
! HYDROSHARD_MODULE_ABI_VERSION. A program refuses to run when
! hydroshard_abi_version() /= HYDROSHARD_MODULE_ABI_VERSION.
!
! Example:
!   type(c_ptr) :: h
!   h = hydroshard_new()
!   if (hydroshard_set_case(h, hs_c('tiny')) /= HYDROSHARD_OK) then
!     write (error_unit, '(a)') hs_errmsg(h)
!   end if
!
! examples/fortran/simulate.f90 is a complete program.
module hydroshard
  use, intrinsic :: iso_c_binding
  implicit none

  private
  ! iso_c_binding's names, so that `use hydroshard` is enough for a caller.
  public :: c_ptr, c_null_ptr, c_null_char, c_char, c_int, c_int8_t, c_int32_t, c_int64_t, &
            c_double, c_size_t, c_loc, c_associated, c_f_pointer

  ! The ABI this module describes: HYDROSHARD_ABI_VERSION of hydroshard.h
  ! (renamed: see the top). Compare with hydroshard_abi_version().
  integer(c_int), parameter, public :: HYDROSHARD_MODULE_ABI_VERSION = 1

  ! Return codes (hydroshard.h says what each one means).
  integer(c_int), parameter, public :: HYDROSHARD_OK = 0
  integer(c_int), parameter, public :: HYDROSHARD_EINVAL = 1
  integer(c_int), parameter, public :: HYDROSHARD_ECASE = 2
  integer(c_int), parameter, public :: HYDROSHARD_EIDENTITY = 3
  integer(c_int), parameter, public :: HYDROSHARD_ECOMMITTED = 4
  integer(c_int), parameter, public :: HYDROSHARD_ECLOSED = 5
  integer(c_int), parameter, public :: HYDROSHARD_EIO = 6
  integer(c_int), parameter, public :: HYDROSHARD_EINTERRUPTED = 7
  integer(c_int), parameter, public :: HYDROSHARD_EINTERNAL = 8

  public :: hydroshard_version, hydroshard_abi_version
  public :: hydroshard_new, hydroshard_errmsg, hydroshard_free
  public :: hydroshard_set_identity, hydroshard_set_case, hydroshard_set_case_json
  public :: hydroshard_set_int, hydroshard_set_string, hydroshard_set_double
  public :: hydroshard_open, hydroshard_rank_id, hydroshard_world
  public :: hydroshard_case_int, hydroshard_case_ids, hydroshard_table_columns
  public :: hydroshard_handle_signals, hydroshard_interrupted, hydroshard_interrupt
  public :: hydroshard_owned, hydroshard_remaining, hydroshard_is_committed
  public :: hydroshard_table, hydroshard_write_scenario, hydroshard_discard_scenario, hydroshard_flush
  public :: hydroshard_last_iteration, hydroshard_write_iteration_json
  public :: hydroshard_checkpoint_stage, hydroshard_checkpoint_meta_json
  public :: hydroshard_checkpoint_basis, hydroshard_checkpoint_states, hydroshard_write_checkpoint
  public :: hydroshard_close, hydroshard_close_interrupted, hydroshard_close_terminated

  ! Conveniences (Fortran strings in and out; not part of the C API).
  public :: hs_c, hs_string, hs_errmsg, hs_version, hs_table_columns

  interface
    ! ---- The library -----------------------------------------------------

    ! The library's version ("0.1.0"), a static C string: hs_version().
    function hydroshard_version() bind(c, name='hydroshard_version') result(s)
      import :: c_ptr
      type(c_ptr) :: s
    end function hydroshard_version

    ! The library's ABI version: compare with HYDROSHARD_MODULE_ABI_VERSION.
    function hydroshard_abi_version() bind(c, name='hydroshard_abi_version') result(v)
      import :: c_int
      integer(c_int) :: v
    end function hydroshard_abi_version

    ! ---- Lifetime -----------------------------------------------------------

    ! A new handle, not yet open; c_null_ptr only when memory is exhausted.
    ! Free it with hydroshard_free.
    function hydroshard_new() bind(c, name='hydroshard_new') result(h)
      import :: c_ptr
      type(c_ptr) :: h
    end function hydroshard_new

    ! The message of the last failure on h as a C string, valid until the
    ! next call on h: hs_errmsg(h) copies it.
    function hydroshard_errmsg(h) bind(c, name='hydroshard_errmsg') result(s)
      import :: c_ptr
      type(c_ptr), value :: h
      type(c_ptr) :: s
    end function hydroshard_errmsg

    ! Closes what is still open (as interrupted) and frees h; c_null_ptr is
    ! ignored.
    subroutine hydroshard_free(h) bind(c, name='hydroshard_free')
      import :: c_ptr
      type(c_ptr), value :: h
    end subroutine hydroshard_free

    ! ---- Before hydroshard_open -------------------------------------------

    ! This process's rank and the world size; without it hydroshard_open
    ! detects them from the launcher's environment.
    function hydroshard_set_identity(h, rank, world) bind(c, name='hydroshard_set_identity') result(rc)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), value :: rank, world
      integer(c_int) :: rc
    end function hydroshard_set_identity

    ! The case: a case.json, a directory holding one, or "tiny", "demo".
    function hydroshard_set_case(h, path) bind(c, name='hydroshard_set_case') result(rc)
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: path
      integer(c_int) :: rc
    end function hydroshard_set_case

    ! The case as JSON text.
    function hydroshard_set_case_json(h, json) bind(c, name='hydroshard_set_case_json') result(rc)
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: json
      integer(c_int) :: rc
    end function hydroshard_set_case_json

    ! Integer options ("scenarios", "workers", "borrow", ...: see the header).
    function hydroshard_set_int(h, name, value) bind(c, name='hydroshard_set_int') result(rc)
      import :: c_ptr, c_int, c_char, c_int64_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      integer(c_int64_t), value :: value
      integer(c_int) :: rc
    end function hydroshard_set_int

    ! String options ("ownership", "rerun_file", "solver", ...).
    function hydroshard_set_string(h, name, value) bind(c, name='hydroshard_set_string') result(rc)
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name, value
      integer(c_int) :: rc
    end function hydroshard_set_string

    ! Floating-point options ("gap_tolerance_percent").
    function hydroshard_set_double(h, name, value) bind(c, name='hydroshard_set_double') result(rc)
      import :: c_ptr, c_int, c_char, c_double
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: name
      real(c_double), value :: value
      integer(c_int) :: rc
    end function hydroshard_set_double

    ! Opens the rank in the output directory out.
    function hydroshard_open(h, out) bind(c, name='hydroshard_open') result(rc)
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: out
      integer(c_int) :: rc
    end function hydroshard_open

    ! This rank and the world size; -1 before hydroshard_open succeeded.
    function hydroshard_rank_id(h) bind(c, name='hydroshard_rank_id') result(r)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int) :: r
    end function hydroshard_rank_id

    function hydroshard_world(h) bind(c, name='hydroshard_world') result(w)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int) :: w
    end function hydroshard_world

    ! ---- The case and the tables --------------------------------------------

    ! A number of the case: "stages", "blocks", "inflow_lag_order",
    ! "state_dimension"; -1 on failure.
    function hydroshard_case_int(h, what) bind(c, name='hydroshard_case_int') result(v)
      import :: c_ptr, c_char, c_int64_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: what
      integer(c_int64_t) :: v
    end function hydroshard_case_int

    ! The ids of a table's entities: writes up to cap of them to ids and
    ! returns how many there are (-1 on failure). With cap 0 any array does.
    function hydroshard_case_ids(h, entity, ids, cap) bind(c, name='hydroshard_case_ids') result(n)
      import :: c_ptr, c_char, c_int32_t, c_int64_t
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: entity
      integer(c_int32_t), dimension(*), intent(inout) :: ids
      integer(c_int64_t), value :: cap
      integer(c_int64_t) :: n
    end function hydroshard_case_ids

    ! The columns of a table, "name:type[?],..." as a static C string
    ! (c_null_ptr for an unknown table): hs_table_columns(entity) copies it.
    function hydroshard_table_columns(entity) bind(c, name='hydroshard_table_columns') result(s)
      import :: c_ptr, c_char
      character(kind=c_char), dimension(*), intent(in) :: entity
      type(c_ptr) :: s
    end function hydroshard_table_columns

    ! ---- Signals ------------------------------------------------------------

    function hydroshard_handle_signals(h) bind(c, name='hydroshard_handle_signals') result(rc)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int) :: rc
    end function hydroshard_handle_signals

    ! 1 when interrupted, else 0.
    function hydroshard_interrupted(h) bind(c, name='hydroshard_interrupted') result(r)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int) :: r
    end function hydroshard_interrupted

    function hydroshard_interrupt(h) bind(c, name='hydroshard_interrupt') result(rc)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int) :: rc
    end function hydroshard_interrupt

    ! ---- Simulation: which scenarios ----------------------------------------

    ! The scenarios this rank owns / still has to write: up to cap ids to
    ! ids, returns how many there are (-1 on failure). With cap 0 any array
    ! does: call once with 0 to size the array.
    function hydroshard_owned(h, ids, cap) bind(c, name='hydroshard_owned') result(n)
      import :: c_ptr, c_int32_t, c_int64_t
      type(c_ptr), value :: h
      integer(c_int32_t), dimension(*), intent(inout) :: ids
      integer(c_int64_t), value :: cap
      integer(c_int64_t) :: n
    end function hydroshard_owned

    function hydroshard_remaining(h, ids, cap) bind(c, name='hydroshard_remaining') result(n)
      import :: c_ptr, c_int32_t, c_int64_t
      type(c_ptr), value :: h
      integer(c_int32_t), dimension(*), intent(inout) :: ids
      integer(c_int64_t), value :: cap
      integer(c_int64_t) :: n
    end function hydroshard_remaining

    ! 1 when the scenario is durable, 0 when not, -1 on failure.
    function hydroshard_is_committed(h, scenario) bind(c, name='hydroshard_is_committed') result(r)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), value :: scenario
      integer(c_int) :: r
    end function hydroshard_is_committed

    ! ---- Simulation: a scenario's tables --------------------------------------

    ! One table of a scenario as plain arrays: columns is the comma-separated
    ! list of the columns given; data(j) = c_loc of column j's rows values
    ! (integer(c_int32_t), integer(c_int8_t) or real(c_double); a bool
    ! column is integer(c_int8_t) 0/1); valid(j) = c_loc of rows validity
    ! bytes (integer(c_int8_t) 1/0) for a nullable column, or c_null_ptr.
    ! The arrays need the TARGET attribute (c_loc) and, when "borrow" is set,
    ! must stay allocated and unchanged until hydroshard_flush or a close
    ! returns.
    function hydroshard_table(h, scenario, entity, rows, columns, data, valid) &
        bind(c, name='hydroshard_table') result(rc)
      import :: c_ptr, c_int, c_char, c_int64_t
      type(c_ptr), value :: h
      integer(c_int), value :: scenario
      character(kind=c_char), dimension(*), intent(in) :: entity
      integer(c_int64_t), value :: rows
      character(kind=c_char), dimension(*), intent(in) :: columns
      type(c_ptr), dimension(*), intent(in) :: data, valid
      integer(c_int) :: rc
    end function hydroshard_table

    function hydroshard_write_scenario(h, scenario) bind(c, name='hydroshard_write_scenario') result(rc)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), value :: scenario
      integer(c_int) :: rc
    end function hydroshard_write_scenario

    function hydroshard_discard_scenario(h, scenario) bind(c, name='hydroshard_discard_scenario') result(rc)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), value :: scenario
      integer(c_int) :: rc
    end function hydroshard_discard_scenario

    function hydroshard_flush(h) bind(c, name='hydroshard_flush') result(rc)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int) :: rc
    end function hydroshard_flush

    ! ---- Training -------------------------------------------------------------

    ! The last durable iteration (0: none), -1 on failure.
    function hydroshard_last_iteration(h) bind(c, name='hydroshard_last_iteration') result(n)
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: h
      integer(c_int64_t) :: n
    end function hydroshard_last_iteration

    function hydroshard_write_iteration_json(h, json) bind(c, name='hydroshard_write_iteration_json') result(rc)
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: json
      integer(c_int) :: rc
    end function hydroshard_write_iteration_json

    ! One stage's cuts: capacity, warm_start_count, slot_indices, iterations
    ! and forward_pass_indices are uint32_t and cut_ids uint64_t in C (the
    ! same bits here); coefficients is ncuts x dim row-major, that is a
    ! Fortran array coefficients(dim, ncuts); states_at_generation is
    ! c_null_ptr or c_loc of such an array; active one byte (0/1) per cut.
    function hydroshard_checkpoint_stage(h, iteration, stage, capacity, warm_start_count, ncuts, dim, &
        cut_ids, slot_indices, iterations, forward_pass_indices, intercepts, coefficients, &
        states_at_generation, active) bind(c, name='hydroshard_checkpoint_stage') result(rc)
      import :: c_ptr, c_int, c_int8_t, c_int32_t, c_int64_t, c_double
      type(c_ptr), value :: h
      integer(c_int), value :: iteration, stage
      integer(c_int32_t), value :: capacity, warm_start_count
      integer(c_int64_t), value :: ncuts
      integer(c_int), value :: dim
      integer(c_int64_t), dimension(*), intent(in) :: cut_ids
      integer(c_int32_t), dimension(*), intent(in) :: slot_indices, iterations, forward_pass_indices
      real(c_double), dimension(*), intent(in) :: intercepts, coefficients
      type(c_ptr), value :: states_at_generation
      integer(c_int8_t), dimension(*), intent(in) :: active
      integer(c_int) :: rc
    end function hydroshard_checkpoint_stage

    function hydroshard_checkpoint_meta_json(h, iteration, json) bind(c, name='hydroshard_checkpoint_meta_json') &
        result(rc)
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: h
      integer(c_int), value :: iteration
      character(kind=c_char), dimension(*), intent(in) :: json
      integer(c_int) :: rc
    end function hydroshard_checkpoint_meta_json

    ! basis_iteration and num_cut_rows are uint32_t in C.
    function hydroshard_checkpoint_basis(h, iteration, stage, basis_iteration, ncolumns, column_status, &
        nrows, row_status, num_cut_rows) bind(c, name='hydroshard_checkpoint_basis') result(rc)
      import :: c_ptr, c_int, c_int8_t, c_int32_t, c_int64_t
      type(c_ptr), value :: h
      integer(c_int), value :: iteration, stage
      integer(c_int32_t), value :: basis_iteration
      integer(c_int64_t), value :: ncolumns
      integer(c_int8_t), dimension(*), intent(in) :: column_status
      integer(c_int64_t), value :: nrows
      integer(c_int8_t), dimension(*), intent(in) :: row_status
      integer(c_int32_t), value :: num_cut_rows
      integer(c_int) :: rc
    end function hydroshard_checkpoint_basis

    ! count states of dimension dim: a Fortran array data(dim, count).
    function hydroshard_checkpoint_states(h, iteration, stage, count, dim, data) &
        bind(c, name='hydroshard_checkpoint_states') result(rc)
      import :: c_ptr, c_int, c_int64_t, c_double
      type(c_ptr), value :: h
      integer(c_int), value :: iteration, stage
      integer(c_int64_t), value :: count
      integer(c_int), value :: dim
      real(c_double), dimension(*), intent(in) :: data
      integer(c_int) :: rc
    end function hydroshard_checkpoint_states

    function hydroshard_write_checkpoint(h, iteration) bind(c, name='hydroshard_write_checkpoint') result(rc)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int), value :: iteration
      integer(c_int) :: rc
    end function hydroshard_write_checkpoint

    ! ---- Closing ----------------------------------------------------------------

    function hydroshard_close(h) bind(c, name='hydroshard_close') result(rc)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int) :: rc
    end function hydroshard_close

    function hydroshard_close_interrupted(h, reason) bind(c, name='hydroshard_close_interrupted') result(rc)
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: reason
      integer(c_int) :: rc
    end function hydroshard_close_interrupted

    function hydroshard_close_terminated(h, termination) bind(c, name='hydroshard_close_terminated') result(rc)
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: h
      character(kind=c_char), dimension(*), intent(in) :: termination
      integer(c_int) :: rc
    end function hydroshard_close_terminated
  end interface

  ! C's strlen, to measure the C strings the library returns.
  interface
    function c_strlen(s) bind(c, name='strlen') result(n)
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: n
    end function c_strlen
  end interface

contains

  ! s with c_null_char appended: a C string for the character arguments.
  ! Blanks are kept: pass hs_c(trim(s)) for a blank-padded variable.
  function hs_c(s) result(cs)
    character(len=*), intent(in) :: s
    character(kind=c_char, len=:), allocatable :: cs
    cs = s // c_null_char
  end function hs_c

  ! A Fortran copy of the NUL-terminated C string at p ('' when p is
  ! c_null_ptr).
  function hs_string(p) result(s)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: s
    character(kind=c_char), dimension(:), pointer :: chars
    integer :: n, i
    if (.not. c_associated(p)) then
      s = ''
      return
    end if
    n = int(c_strlen(p))
    allocate (character(len=n) :: s)
    if (n == 0) return
    call c_f_pointer(p, chars, [n])
    do i = 1, n
      s(i:i) = chars(i)
    end do
  end function hs_string

  ! A Fortran copy of hydroshard_errmsg(h): the message of the last failure
  ! on h ('' when none).
  function hs_errmsg(h) result(msg)
    type(c_ptr), intent(in) :: h
    character(len=:), allocatable :: msg
    msg = hs_string(hydroshard_errmsg(h))
  end function hs_errmsg

  ! hydroshard_version() as a Fortran string.
  function hs_version() result(v)
    character(len=:), allocatable :: v
    v = hs_string(hydroshard_version())
  end function hs_version

  ! hydroshard_table_columns(entity) as a Fortran string, for a Fortran
  ! entity name (no c_null_char): '' for an unknown table.
  function hs_table_columns(entity) result(columns)
    character(len=*), intent(in) :: entity
    character(len=:), allocatable :: columns
    columns = hs_string(hydroshard_table_columns(hs_c(entity)))
  end function hs_table_columns

end module hydroshard

#include <mpi.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <numeric>
#include <thread>

#include "parallel/communicator.h"
#include "parallel/self_communicator.h"
#include "parallel/watchdog.h"
#include "runtime/error.h"

namespace mt::parallel {
namespace {

MPI_Datatype mpi_type(DType t, const char* op) {
  switch (t) {
    case DType::F32:
      return MPI_FLOAT;
    case DType::F64:
      return MPI_DOUBLE;
    case DType::I32:
      return MPI_INT32_T;
    case DType::I64:
      return MPI_INT64_T;
    case DType::BF16:
    case DType::F16:
      break;
  }
  throw Error(std::string(op) + ": dtype " + dtype_name(t) + " has no MPI reduction (use f32/f64/i32/i64)");
}

// For pure data movement any dtype travels as bytes.
struct Bytes {
  MPI_Datatype type;
  int64_t per_element;
};
Bytes as_bytes(DType t) {
  return {MPI_BYTE, int64_t(dtype_size(t))};
}

int to_int(int64_t v, const char* op) {
  MT_CHECK(v >= 0 && v <= 0x7fffffff, op, ": a message of ", v, " elements exceeds MPI's int count");
  return int(v);
}

// MPI moves host memory. A tensor in GPU memory is staged through a host copy (correct on any MPI,
// CUDA-aware or not; training on GPUs uses NCCL for its device tensors when it is built,
// parallel/device_routed_communicator.h).
Tensor on_host(const Tensor& t) {
  return t.device().is_cpu() ? t : t.to(Device::cpu());
}
Tensor host_buffer(const Tensor& t) {
  return t.device().is_cpu() ? t : Tensor::empty(t.shape(), t.dtype());
}
void write_back(const Tensor& host, Tensor& t) {
  if (!t.device().is_cpu()) t.copy_from(host);
}

// --- the census: which ranks a timed-out collective still waits for --------------------------
// A rank whose collective timed out asks every member of the group, over a private duplicate
// of the group's communicator, how many collectives it has entered there and where it waits; a
// rank answers while it waits in any collective (between polls, parallel/watchdog.h). Members
// that entered this collective arrived; the others either answer where they wait instead, or do
// not answer at all (stopped, stuck in I/O or on a device, or busy outside collectives). The
// question carries the tag of its answers, new for every census, so that a late answer to an
// earlier one is never taken for an answer to this one.
constexpr int kCensusAsk = 1, kFirstAnswerTag = 2, kAnswerTags = 30000;
struct CensusAnswer {
  uint64_t entered = 0;  // collectives the answering rank has entered on the group
  char where[240] = {};  // where it waits now
};

class MpiCommunicator;
std::vector<MpiCommunicator*>& live_communicators() {
  static std::vector<MpiCommunicator*> all;
  return all;
}
// The collective this rank waits in now (null comm: none).
struct Waiting {
  const MpiCommunicator* comm = nullptr;
  const char* op = "";
  uint64_t seq = 0;
};
Waiting g_waiting;
// Sets g_waiting for its lifetime (timeout and census included), then restores it.
class WaitingIn {
 public:
  WaitingIn(const MpiCommunicator* comm, const char* op, uint64_t seq) : outer_(g_waiting) {
    g_waiting = {comm, op, seq};
  }
  ~WaitingIn() { g_waiting = outer_; }
  WaitingIn(const WaitingIn&) = delete;
  WaitingIn& operator=(const WaitingIn&) = delete;

 private:
  Waiting outer_;
};
// The node of every world rank, gathered when the world forms.
std::vector<std::string> g_hosts;
void answer_census();

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, bool owned, const std::string& group) : comm_(comm), owned_(owned) {
    group_name_ = group;
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    members_ = world_ranks_of(comm_, size_);
    MPI_Request req = MPI_REQUEST_NULL;
    check(MPI_Comm_idup(comm_, &watch_, &req), "split");
    WaitingIn here(this, "split", seq_);
    if (!wait(req, "split", {}))
      fail_collective("forming " + describe() + " has waited " + duration_text(collective_timeout_seconds()) +
                      " on world rank " + std::to_string(members_[size_t(rank_)]) + ": not every rank arrived. " +
                      timeout_advice());
    live_communicators().push_back(this);
    set_idle_service(answer_census);
  }
  ~MpiCommunicator() override {
    auto& live = live_communicators();
    live.erase(std::remove(live.begin(), live.end(), this), live.end());
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    for (Abandoned& a : abandoned_) {  // a collective that timed out (tests): free it if it completed since
      int flag = 0;
      MPI_Test(&a.request, &flag, MPI_STATUS_IGNORE);
    }
    MPI_Comm_free(&watch_);
    if (owned_) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void all_reduce(Tensor& t_any, ReduceKind kind) override {
    check_defined(t_any, "all_reduce");
    Tensor t = on_host(t_any);
    MPI_Op op = kind == ReduceKind::Max ? MPI_MAX : MPI_SUM;
    int n = to_int(t.numel(), "all_reduce");
    MPI_Datatype type = mpi_type(t.dtype(), "all_reduce");
    run("all_reduce", {t},
        [&](MPI_Request* r) { return MPI_Iallreduce(MPI_IN_PLACE, t.raw(), n, type, op, comm_, r); });
    if (kind == ReduceKind::Avg) scale(t, 1.0 / double(size_));
    write_back(t, t_any);
  }

  void all_gather(const Tensor& in_any, Tensor& out_any) override {
    check_defined(in_any, "all_gather");
    Tensor in = on_host(in_any), out = host_buffer(out_any);
    MT_CHECK(out.numel() == in.numel() * size_ && out.dtype() == in.dtype(), "all_gather on rank ", rank_, ": out ",
             out.str(), " must hold ", size_, " x ", in.str());
    Bytes b = as_bytes(in.dtype());
    int n = to_int(in.numel() * b.per_element, "all_gather");
    run("all_gather", {in, out},
        [&](MPI_Request* r) { return MPI_Iallgather(in.raw(), n, b.type, out.raw(), n, b.type, comm_, r); });
    write_back(out, out_any);
  }

  void reduce_scatter(const Tensor& in_any, Tensor& out_any, ReduceKind kind) override {
    check_defined(in_any, "reduce_scatter");
    Tensor in = on_host(in_any), out = host_buffer(out_any);
    MT_CHECK(in.numel() == out.numel() * size_ && out.dtype() == in.dtype(), "reduce_scatter on rank ", rank_, ": in ",
             in.str(), " must hold ", size_, " x out ", out.str());
    MPI_Op op = kind == ReduceKind::Max ? MPI_MAX : MPI_SUM;
    int n = to_int(out.numel(), "reduce_scatter");
    MPI_Datatype type = mpi_type(in.dtype(), "reduce_scatter");
    run("reduce_scatter", {in, out},
        [&](MPI_Request* r) { return MPI_Ireduce_scatter_block(in.raw(), out.raw(), n, type, op, comm_, r); });
    if (kind == ReduceKind::Avg) scale(out, 1.0 / double(size_));
    write_back(out, out_any);
  }

  void reduce(Tensor& t_any, ReduceKind kind, int root) override {
    check_defined(t_any, "reduce");
    MT_CHECK(root >= 0 && root < size_, "reduce: root ", root, " outside the group of ", size_);
    Tensor t = on_host(t_any);
    MPI_Op op = kind == ReduceKind::Max ? MPI_MAX : MPI_SUM;
    int n = to_int(t.numel(), "reduce");
    MPI_Datatype type = mpi_type(t.dtype(), "reduce");
    bool mine = rank_ == root;  // the root reduces in place; the others only send
    run("reduce", {t}, [&](MPI_Request* r) {
      return MPI_Ireduce(mine ? MPI_IN_PLACE : t.raw(), mine ? t.raw() : nullptr, n, type, op, root, comm_, r);
    });
    if (!mine) return;
    if (kind == ReduceKind::Avg) scale(t, 1.0 / double(size_));
    write_back(t, t_any);
  }

  void broadcast(Tensor& t_any, int root) override {
    check_defined(t_any, "broadcast");
    Tensor t = on_host(t_any);
    MT_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " outside the group of ", size_);
    Bytes b = as_bytes(t.dtype());
    int n = to_int(t.numel() * b.per_element, "broadcast");
    run("broadcast", {t}, [&](MPI_Request* r) { return MPI_Ibcast(t.raw(), n, b.type, root, comm_, r); });
    write_back(t, t_any);
  }

  void all_to_all(const Tensor& in_any, Tensor& out_any) override {
    check_defined(in_any, "all_to_all");
    Tensor in = on_host(in_any), out = host_buffer(out_any);
    MT_CHECK(in.numel() % size_ == 0 && out.numel() == in.numel() && out.dtype() == in.dtype(), "all_to_all on rank ",
             rank_, ": in ", in.str(), " must split into ", size_, " equal chunks and out ", out.str(), " match it");
    Bytes b = as_bytes(in.dtype());
    int n = to_int(in.numel() / size_ * b.per_element, "all_to_all");
    run("all_to_all", {in, out},
        [&](MPI_Request* r) { return MPI_Ialltoall(in.raw(), n, b.type, out.raw(), n, b.type, comm_, r); });
    write_back(out, out_any);
  }

  void all_to_all_v(const Tensor& in_any, const std::vector<int64_t>& send_rows, Tensor& out_any,
                    const std::vector<int64_t>& recv_rows) override {
    check_defined(in_any, "all_to_all_v");
    Tensor in = on_host(in_any), out = host_buffer(out_any);
    MT_CHECK(int(send_rows.size()) == size_ && int(recv_rows.size()) == size_ && out.dtype() == in.dtype(),
             "all_to_all_v on rank ", rank_, ": one send and one receive count per rank (", size_, ")");
    int64_t row_bytes = in.dim() > 0 && in.size(0) > 0     ? int64_t(in.nbytes()) / in.size(0)
                        : out.dim() > 0 && out.size(0) > 0 ? int64_t(out.nbytes()) / out.size(0)
                                                           : 0;
    const size_t n = static_cast<size_t>(size_);
    std::vector<int> sc(n), sd(n), rc(n), rd(n);
    int64_t so = 0, ro = 0;
    for (int j = 0; j < size_; ++j) {
      sc[size_t(j)] = to_int(send_rows[size_t(j)] * row_bytes, "all_to_all_v");
      rc[size_t(j)] = to_int(recv_rows[size_t(j)] * row_bytes, "all_to_all_v");
      sd[size_t(j)] = to_int(so, "all_to_all_v");
      rd[size_t(j)] = to_int(ro, "all_to_all_v");
      so += sc[size_t(j)];
      ro += rc[size_t(j)];
    }
    MT_CHECK(so == int64_t(in.nbytes()) && ro == int64_t(out.nbytes()), "all_to_all_v on rank ", rank_,
             ": the counts move ", so, " bytes out of ", in.str(), " and ", ro, " bytes into ", out.str());
    // The count arrays must outlive the call when it times out (tests): they travel with it.
    auto counts = std::make_shared<std::vector<std::vector<int>>>(std::vector<std::vector<int>>{sc, sd, rc, rd});
    const auto& c = *counts;
    run(
        "all_to_all_v", {in, out},
        [&](MPI_Request* r) {
          return MPI_Ialltoallv(in.raw(), c[0].data(), c[1].data(), MPI_BYTE, out.raw(), c[2].data(), c[3].data(),
                                MPI_BYTE, comm_, r);
        },
        counts);
    write_back(out, out_any);
  }

  void barrier() override {
    run("barrier", {}, [&](MPI_Request* r) { return MPI_Ibarrier(comm_, r); });
  }

  std::unique_ptr<Communicator> split(int color, int key) override {
    // MPI_Comm_split has no non-blocking form: a watched barrier first, so that a rank that does
    // not arrive is reported rather than waited for.
    run("split", {}, [&](MPI_Request* r) { return MPI_Ibarrier(comm_, r); });
    MPI_Comm sub;
    check(MPI_Comm_split(comm_, color, key, &sub), "split");
    return std::make_unique<MpiCommunicator>(sub, true, "");
  }

  // The node name of every rank (world only): gathered once, for the timeout messages.
  std::vector<std::string> gather_node_names() {
    constexpr int kLength = 64;
    std::vector<char> mine(kLength, 0), all(size_t(kLength) * size_t(size_), 0);
    int len = 0;
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    MPI_Get_processor_name(name, &len);
    std::memcpy(mine.data(), name, size_t(std::min(len, kLength - 1)));
    run("all_gather", {}, [&](MPI_Request* r) {
      return MPI_Iallgather(mine.data(), kLength, MPI_CHAR, all.data(), kLength, MPI_CHAR, comm_, r);
    });
    std::vector<std::string> out;
    for (int j = 0; j < size_; ++j) out.emplace_back(all.data() + size_t(j) * kLength);
    return out;
  }

  // Answers the census questions other ranks sent over this group (see answer_census).
  void answer_asks() {
    for (;;) {
      int flag = 0;
      MPI_Status st;
      if (MPI_Iprobe(MPI_ANY_SOURCE, kCensusAsk, watch_, &flag, &st) != MPI_SUCCESS || !flag) return;
      uint64_t asked[2] = {};  // the asker's collective, the tag of the answer
      MPI_Recv(asked, 2, MPI_UINT64_T, st.MPI_SOURCE, kCensusAsk, watch_, MPI_STATUS_IGNORE);
      if (g_waiting.comm == this && asked[0] == seq_) asked_about_ = seq_;  // the asker waits in it too
      CensusAnswer& a = answers_sent_.emplace_back();
      a.entered = seq_;
      std::snprintf(a.where, sizeof a.where, "%s", where_now().c_str());
      MPI_Request req;
      if (MPI_Isend(&a, int(sizeof a), MPI_BYTE, st.MPI_SOURCE, int(asked[1]), watch_, &req) == MPI_SUCCESS)
        MPI_Request_free(&req);
    }
  }

  // "the data parallel group (world ranks 0-3)".
  std::string describe() const {
    std::string ranks = "world ranks " + rank_list(members_);
    return group_name_.empty() ? "the group of " + ranks : "the " + group_name_ + " group (" + ranks + ")";
  }

 private:
  struct Abandoned {  // a collective that timed out, with the memory it may still write
    MPI_Request request;
    std::vector<Tensor> buffers;
    std::shared_ptr<void> extra;
  };

  // One collective: `start` posts its non-blocking form; the watchdog waits for it.
  void run(const char* op, std::vector<Tensor> buffers, const std::function<int(MPI_Request*)>& start,
           std::shared_ptr<void> extra = nullptr) {
    ++seq_;
    MPI_Request req = MPI_REQUEST_NULL;
    check(start(&req), op);
    WaitingIn here(this, op, seq_);  // while it waits, a census answer names this collective
    if (!wait(req, op, std::move(buffers), std::move(extra))) time_out(op);
  }

  // Waits for `req` under the watchdog; false when it timed out (the request is then kept).
  bool wait(MPI_Request& req, const char* op, std::vector<Tensor> buffers, std::shared_ptr<void> extra = nullptr) {
    int code = MPI_SUCCESS;
    bool done = wait_for_collective([&] {
      int flag = 0;
      code = MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
      return flag || code != MPI_SUCCESS;
    });
    if (!done) {
      abandoned_.push_back({req, std::move(buffers), std::move(extra)});
      return false;
    }
    check(code, op);
    return true;
  }

  // After the timeout: asks the group where everyone is, then fails with the answer.
  [[noreturn]] void time_out(const char* op) {
    if (asked_about_ == seq_) let_peer_end_job();  // a peer waiting in it too asked first: it speaks
    const size_t n = size_t(size_);
    std::vector<CensusAnswer> answers(n);
    std::vector<MPI_Request> receives(n, MPI_REQUEST_NULL);
    static int census = 0;
    const int tag = kFirstAnswerTag + census++ % kAnswerTags;
    asked_[0] = seq_;
    asked_[1] = uint64_t(tag);
    for (int j = 0; j < size_; ++j) {
      if (j == rank_) continue;
      MPI_Irecv(&answers[size_t(j)], int(sizeof(CensusAnswer)), MPI_BYTE, j, tag, watch_, &receives[size_t(j)]);
      MPI_Request ask;
      if (MPI_Isend(asked_, 2, MPI_UINT64_T, j, kCensusAsk, watch_, &ask) == MPI_SUCCESS) MPI_Request_free(&ask);
    }
    std::vector<bool> answered(n, false);
    answered[size_t(rank_)] = true;
    wait_for_answers(receives, answered);
    for (size_t j = 0; j < n; ++j)
      if (!answered[j] && receives[j] != MPI_REQUEST_NULL) {  // withdraw the question
        MPI_Cancel(&receives[j]);
        MPI_Wait(&receives[j], MPI_STATUS_IGNORE);
      }
    fail_collective(timeout_message(op, answers, answered));
  }

  // Collects census answers for at most the grace period, answering other ranks' questions.
  void wait_for_answers(std::vector<MPI_Request>& receives, std::vector<bool>& answered) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(census_grace_seconds());
    for (;;) {
      bool all = true;
      for (size_t j = 0; j < receives.size(); ++j) {
        if (answered[j]) continue;
        int flag = 0;
        MPI_Test(&receives[j], &flag, MPI_STATUS_IGNORE);
        answered[j] = flag != 0;
        all = all && answered[j];
      }
      if (all || std::chrono::steady_clock::now() >= deadline) return;
      run_idle_service();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // The message of a timed-out collective: what waited, which ranks did not arrive and why.
  std::string timeout_message(const char* op, const std::vector<CensusAnswer>& answers,
                              const std::vector<bool>& answered) const {
    std::vector<int> silent;
    std::map<std::string, std::vector<int>> elsewhere;  // where they wait -> world ranks
    for (int j = 0; j < size_; ++j) {
      int w = members_[size_t(j)];
      if (!answered[size_t(j)])
        silent.push_back(w);
      else if (j != rank_ && answers[size_t(j)].entered < seq_)  // alive, but it has not entered this one
        elsewhere[answers[size_t(j)].where].push_back(w);
    }
    std::string me = std::to_string(members_[size_t(rank_)]);
    std::string out = std::string(op) + " #" + std::to_string(seq_) + " on " + describe() + " has waited " +
                      duration_text(collective_timeout_seconds()) + " on world rank " + me +
                      node_of({members_[size_t(rank_)]}) + ": ";
    std::vector<std::string> parts;
    if (!silent.empty())
      parts.push_back(
          plural(silent, "world rank ", "world ranks ") + node_of(silent) +
          (silent.size() == 1 ? " did not arrive and does not answer" : " did not arrive and do not answer") +
          " (stopped, stuck in I/O or on a device, or busy outside collectives)");
    for (const auto& [where, ranks] : elsewhere)
      parts.push_back(plural(ranks, "world rank ", "world ranks ") + " did not arrive: waiting " + where);
    if (parts.empty()) out += "every rank of the group arrived (the transport itself is stuck)";
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? "; " : "") + parts[i];
    return out + ". " + timeout_advice();
  }

  // "world rank 3" or "world ranks 3-5".
  static std::string plural(const std::vector<int>& ranks, const char* one, const char* many) {
    return (ranks.size() == 1 ? one : many) + rank_list(ranks);
  }
  // " (node a)" or " (nodes a, b)" for world ranks; empty when the names are unknown.
  static std::string node_of(const std::vector<int>& ranks) {
    std::vector<std::string> nodes;
    for (int r : ranks)
      if (r >= 0 && size_t(r) < g_hosts.size() &&
          std::find(nodes.begin(), nodes.end(), g_hosts[size_t(r)]) == nodes.end())
        nodes.push_back(g_hosts[size_t(r)]);
    if (nodes.empty()) return "";
    std::string out = nodes.size() == 1 ? " (node " : " (nodes ";
    for (size_t i = 0; i < nodes.size() && i < 8; ++i) out += (i ? ", " : "") + nodes[i];
    return out + (nodes.size() > 8 ? ", ...)" : ")");
  }

  // Where this rank waits now, for a census answer.
  static std::string where_now() {
    if (!g_waiting.comm) return "outside collectives";
    return std::string("in ") + g_waiting.op + " #" + std::to_string(g_waiting.seq) + " on " +
           g_waiting.comm->describe();
  }

  // The world rank of each member of `comm`, in its rank order.
  static std::vector<int> world_ranks_of(MPI_Comm comm, int size) {
    MPI_Group group, world_group;
    MPI_Comm_group(comm, &group);
    MPI_Comm_group(MPI_COMM_WORLD, &world_group);
    std::vector<int> local(static_cast<size_t>(size)), world(static_cast<size_t>(size));
    std::iota(local.begin(), local.end(), 0);
    MPI_Group_translate_ranks(group, size, local.data(), world_group, world.data());
    MPI_Group_free(&group);
    MPI_Group_free(&world_group);
    return world;
  }

  void check(int code, const char* op) const {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    throw Error(std::string(op) + " failed on rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": " +
                std::string(text, size_t(len)));
  }
  void check_defined(const Tensor& t, const char* op) const {
    MT_CHECK(t.defined(), op, " on rank ", rank_, ": an undefined tensor");
  }
  static void scale(Tensor& t, double factor) {
    if (t.dtype() == DType::F32) {
      float* p = t.data<float>();
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = float(p[i] * factor);
    } else if (t.dtype() == DType::F64) {
      double* p = t.data<double>();
      for (int64_t i = 0; i < t.numel(); ++i) p[i] *= factor;
    } else {
      throw Error("all_reduce Avg: needs a float tensor, got " + t.str());
    }
  }

  MPI_Comm comm_;
  MPI_Comm watch_ = MPI_COMM_NULL;  // the census' private duplicate of comm_
  bool owned_;
  int rank_ = 0, size_ = 1;
  std::vector<int> members_;               // world rank of each member
  uint64_t seq_ = 0;                       // collectives entered on this group
  uint64_t asked_[2] = {};                 // the census question in flight (its send buffer)
  uint64_t asked_about_ = 0;               // the last collective of ours a peer waiting in it asked about
  std::deque<CensusAnswer> answers_sent_;  // answers in flight (their send buffers)
  std::vector<Abandoned> abandoned_;
};

// Between polls of any wait: answers the census questions sent over every group of this rank.
void answer_census() {
  for (MpiCommunicator* c : live_communicators()) c->answer_asks();
}

void finalize_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace

void abort_other_ranks(int code) {
  int initialized = 0, finalized = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

// Under a launcher: this process dies with its parent (mpirun, orted, slurmstepd), so killing the
// launcher leaves no rank behind, not even a stopped one (SIGKILL ends a stopped process too).
static void die_with_launcher() {
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);  // the launcher died before the request took effect
}

Communicator& world() {
  static std::unique_ptr<Communicator> w = []() -> std::unique_ptr<Communicator> {
    int initialized = 0;
    MPI_Initialized(&initialized);
    // Started without a launcher: one rank, and MPI stays uninitialised (self_communicator.h).
    if (!initialized && !launched_by_mpi()) return make_self_communicator();
    if (!initialized) {
      die_with_launcher();
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      std::atexit(finalize_mpi);
    }
    auto mpi = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, false, "world");
    g_hosts = mpi->gather_node_names();
    return mpi;
  }();
  return *w;
}

}  // namespace mt::parallel

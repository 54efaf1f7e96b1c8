// catalog_journal: framing, replay, torn tails and corruption, on real files in a temp directory.
#include "shoal/store/catalog_journal.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "proto/shoal.pb.h"
#include "shoal/cluster/replicated_catalog.hpp"
#include "support/catalog_dump.hpp"
#include "support/files.hpp"

namespace shoal {
namespace {

namespace fs = std::filesystem;
using testing::dump;
using testing::read_file;
using testing::write_file;

const model_id bot{"acme", "bot"};

// A temp dir for one journal file.
class journal_dir : public testing::temp_dir {
 public:
  std::string journal() const { return file("catalog.journal"); }
};

uint32_t le32(const std::string& s, size_t off) {
  auto b = reinterpret_cast<const unsigned char*>(s.data() + off);
  return b[0] | b[1] << 8 | b[2] << 16 | static_cast<uint32_t>(b[3]) << 24;
}

std::string frame(const std::string& payload) {
  std::string out(8, '\0');
  uint32_t len = static_cast<uint32_t>(payload.size());
  uint32_t crc = static_cast<uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(len)));
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<char>(len >> (8 * i));
    out[4 + i] = static_cast<char>(crc >> (8 * i));
  }
  return out + payload;
}

// Where each record starts, read from the framing.
std::vector<size_t> record_offsets(const std::string& data) {
  std::vector<size_t> out;
  for (size_t off = 0; off + 8 <= data.size(); off += 8 + le32(data, off)) out.push_back(off);
  return out;
}

snapshot_info snap(const std::string& sha, const std::string& note = "") {
  snapshot_info s;
  s.sha256 = sha;
  s.size_bytes = 100 + sha.size();
  s.format = "fasttext";
  s.note = note;
  return s;
}

label_request label_req(label_action action, std::optional<uint32_t> version,
                        const std::string& label = "") {
  label_request r;
  r.id = bot;
  r.label = label;
  r.action = action;
  r.version = version;
  return r;
}

struct opened {
  std::unique_ptr<catalog_journal> journal;
  std::vector<std::string> warnings;
};

result<opened> open_journal(const std::string& path, catalog& into) {
  opened o;
  auto r =
      catalog_journal::open(path, into, [&](const std::string& w) { o.warnings.push_back(w); });
  if (!r) return r.error();
  o.journal = std::move(r).value();
  return o;
}

// What the catalog actor does: plan, make durable, then apply.
void commit(catalog_journal& j, catalog& c, const std::vector<catalog_change>& changes) {
  ASSERT_TRUE(j.append(changes).is_ok());
  for (const auto& ch : changes) ASSERT_TRUE(c.apply(ch).is_ok());
}

void commit_label(catalog_journal& j, catalog& c, const label_request& req, int64_t now) {
  auto plan = c.plan_label(req, now);
  ASSERT_TRUE(plan.is_ok()) << plan.error().to_string();
  commit(j, c, {*plan});
}

// Writes a journal with a varied history; returns the catalog it should replay into and, for
// each record, the catalog as it was after that record.
catalog write_history(const std::string& path, std::vector<std::string>* after_each = nullptr) {
  catalog c;
  auto o = open_journal(path, c);
  EXPECT_TRUE(o.is_ok()) << o.error().to_string();
  if (!o) return c;
  catalog_journal& j = *o->journal;
  auto note = [&] {
    if (after_each != nullptr) after_each->push_back(dump(c));
  };
  commit(j, c, c.plan_push(bot, snap("sha-1", "first"), "", 1000));
  note();
  commit(j, c, c.plan_push(bot, snap("sha-2"), "staging", 2000));
  note();
  commit(j, c, c.plan_push(bot, snap("sha-3", "the third"), "production", 3000));
  note();
  commit_label(j, c, label_req(label_action::rollback, std::nullopt), 4000);
  note();
  commit_label(j, c, label_req(label_action::promote, 3u, "staging"), 5000);
  note();
  commit_label(j, c, label_req(label_action::rollback, 2u), 6000);
  note();
  commit(j, c, c.plan_push(model_id{"beta", "x"}, snap("sha-b"), "canary", 7000));
  note();
  commit_label(j, c, label_req(label_action::rollback, 3u), 8000);
  note();
  return c;
}

TEST(catalog_journal, open_creates_a_missing_journal) {
  journal_dir t;
  catalog c;
  auto o = open_journal(t.journal(), c);
  ASSERT_TRUE(o.is_ok()) << o.error().to_string();
  EXPECT_TRUE(fs::exists(t.journal()));
  EXPECT_EQ(fs::file_size(t.journal()), 0u);
  EXPECT_TRUE(c.models().empty());
  EXPECT_TRUE(o->warnings.empty());
}

TEST(catalog_journal, each_append_is_one_framed_checksummed_record) {
  journal_dir t;
  catalog c;
  auto o = open_journal(t.journal(), c);
  ASSERT_TRUE(o.is_ok());
  auto changes = c.plan_push(bot, snap("sha-1", "n"), "staging", 42);
  ASSERT_TRUE(o->journal->append(changes).is_ok());

  const std::string data = read_file(t.journal());
  ASSERT_GE(data.size(), 8u);
  uint32_t len = le32(data, 0);
  ASSERT_EQ(data.size(), 8u + len) << "one record, nothing else";
  const std::string payload = data.substr(8);
  EXPECT_EQ(le32(data, 4), static_cast<uint32_t>(
                               ::crc32(0L, reinterpret_cast<const Bytef*>(payload.data()), len)));
  pb::CatalogRecord rec;
  ASSERT_TRUE(rec.ParseFromString(payload));
  ASSERT_EQ(rec.changes_size(), 3);
  EXPECT_EQ(rec.changes(0).kind(), pb::CatalogChange::ADD_SNAPSHOT);
  EXPECT_EQ(rec.changes(0).tenant(), "acme");
  EXPECT_EQ(rec.changes(0).model(), "bot");
  EXPECT_EQ(rec.changes(0).snapshot().version(), 1u);
  EXPECT_EQ(rec.changes(0).snapshot().sha256(), "sha-1");
  EXPECT_EQ(rec.changes(0).snapshot().note(), "n");
  EXPECT_EQ(rec.changes(1).kind(), pb::CatalogChange::MOVE_LABEL);
  EXPECT_EQ(rec.changes(1).label(), "production");
  EXPECT_EQ(rec.changes(1).action(), "promote");
  EXPECT_EQ(rec.changes(1).to(), 1u);
  EXPECT_EQ(rec.changes(1).time_ms(), 42);
  EXPECT_EQ(rec.changes(2).label(), "staging");

  ASSERT_TRUE(o->journal->append({}).is_ok());
  EXPECT_EQ(read_file(t.journal()).size(), data.size()) << "an empty append writes nothing";
}

TEST(catalog_journal, replay_rebuilds_an_identical_catalog) {
  journal_dir t;
  catalog original = write_history(t.journal());
  ASSERT_EQ(original.models().size(), 2u);

  catalog replayed;
  auto o = open_journal(t.journal(), replayed);
  ASSERT_TRUE(o.is_ok()) << o.error().to_string();
  EXPECT_TRUE(o->warnings.empty());
  EXPECT_EQ(dump(replayed), dump(original));
  const auto& prod = replayed.find(bot)->labels.at("production");
  EXPECT_EQ(prod.stack, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(prod.history.size(), 5u);
  EXPECT_EQ(replayed.find(bot)->labels.at("staging").stack, (std::vector<uint32_t>{2, 3}));

  // Appends after a replay land after the old records and replay too.
  commit_label(*o->journal, replayed, label_req(label_action::rollback, std::nullopt), 9000);
  o->journal.reset();
  catalog again;
  auto o2 = open_journal(t.journal(), again);
  ASSERT_TRUE(o2.is_ok()) << o2.error().to_string();
  EXPECT_EQ(dump(again), dump(replayed));
  EXPECT_EQ(*again.resolve(bot, std::nullopt, ""), 2u);
}

// Replicated changes keep who made them and when; a journal from before replication (no
// origin) replays into a replicated catalog as this node's changes, followed by new ones.
TEST(catalog_journal, replicated_changes_keep_origin_seq_and_time_across_a_restart) {
  journal_dir t;
  catalog original = write_history(t.journal());  // written before replication
  replicated_catalog first("me");
  {
    auto j = catalog_journal::open(
        t.journal(), [&](const catalog_change& c) { return first.add(c, 50000).error(); },
        nullptr);
    ASSERT_TRUE(j.is_ok()) << j.error().to_string();
    EXPECT_EQ(dump(first.view()), dump(original));
    // One change from a peer and one of ours, stamped.
    catalog_change peer = first.view().plan_push(bot, snap("from-n2"), "", 60000)[0];
    peer.origin = "n2";
    peer.seq = 1;
    peer.at = hlc_timestamp{60000, 3};
    ASSERT_TRUE((*j)->append({peer}).is_ok());
    ASSERT_TRUE(first.add(peer, 60000).is_ok());
    label_request req = label_req(label_action::promote, 4u);
    auto mine = first.stamp({*first.view().plan_label(req, 61000)}, 61000);
    ASSERT_TRUE((*j)->append(mine).is_ok());
    ASSERT_TRUE(first.add(mine[0], 61000).is_ok());
  }
  replicated_catalog second("me");
  auto j = catalog_journal::open(
      t.journal(), [&](const catalog_change& c) { return second.add(c, 70000).error(); },
      nullptr);
  ASSERT_TRUE(j.is_ok()) << j.error().to_string();
  EXPECT_EQ(dump(second.view()), dump(first.view()));
  EXPECT_EQ(second.frontier(), first.frontier());
  auto a = first.missing_for({}, 1000), b = second.missing_for({}, 1000);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].origin, b[i].origin);
    EXPECT_EQ(a[i].seq, b[i].seq);
    EXPECT_EQ(a[i].at, b[i].at);
  }
  EXPECT_EQ(second.range("n2", 1, 1).at(0).at, (hlc_timestamp{60000, 3}));
}

TEST(catalog_journal, a_torn_tail_at_any_offset_is_cut_off_and_later_appends_work) {
  journal_dir t;
  std::vector<std::string> after_each;
  write_history(t.journal(), &after_each);
  const std::string whole = read_file(t.journal());
  const auto offsets = record_offsets(whole);
  ASSERT_EQ(offsets.size(), after_each.size());
  const size_t last = offsets.back();
  ASSERT_GT(whole.size() - last, 9u);
  const std::string expected = after_each[after_each.size() - 2];

  for (size_t cut = last + 1; cut < whole.size(); ++cut) {
    SCOPED_TRACE("cut at byte " + std::to_string(cut));
    const std::string path = t.path() + "/torn.journal";
    write_file(path, whole.substr(0, cut));
    catalog c;
    auto o = open_journal(path, c);
    ASSERT_TRUE(o.is_ok()) << o.error().to_string();
    ASSERT_EQ(o->warnings.size(), 1u);
    EXPECT_NE(o->warnings[0].find("byte " + std::to_string(last)), std::string::npos)
        << o->warnings[0];
    EXPECT_EQ(dump(c), expected) << "only the torn record is dropped";
    EXPECT_EQ(fs::file_size(path), last) << "the torn bytes are gone from the file";

    commit_label(*o->journal, c, label_req(label_action::promote, 1u, "after"), 1);
    o->journal.reset();
    catalog reopened;
    auto o2 = open_journal(path, reopened);
    ASSERT_TRUE(o2.is_ok()) << o2.error().to_string();
    EXPECT_TRUE(o2->warnings.empty());
    EXPECT_EQ(dump(reopened), dump(c));
  }
}

TEST(catalog_journal, a_bad_checksum_in_the_last_record_is_cut_off) {
  journal_dir t;
  std::vector<std::string> after_each;
  write_history(t.journal(), &after_each);
  std::string data = read_file(t.journal());
  const size_t last = record_offsets(data).back();
  data[data.size() - 3] ^= 0x40;
  write_file(t.journal(), data);

  catalog c;
  auto o = open_journal(t.journal(), c);
  ASSERT_TRUE(o.is_ok()) << o.error().to_string();
  ASSERT_EQ(o->warnings.size(), 1u);
  EXPECT_NE(o->warnings[0].find("CRC"), std::string::npos) << o->warnings[0];
  EXPECT_EQ(dump(c), after_each[after_each.size() - 2]);
  EXPECT_EQ(fs::file_size(t.journal()), last);
}

TEST(catalog_journal, zero_filled_space_at_the_tail_is_cut_off) {
  journal_dir t;
  catalog original = write_history(t.journal());
  const size_t size = fs::file_size(t.journal());
  {
    std::ofstream out(t.journal(), std::ios::binary | std::ios::app);
    out << std::string(4096, '\0');
  }
  catalog c;
  auto o = open_journal(t.journal(), c);
  ASSERT_TRUE(o.is_ok()) << o.error().to_string();
  EXPECT_EQ(o->warnings.size(), 1u);
  EXPECT_EQ(dump(c), dump(original));
  EXPECT_EQ(fs::file_size(t.journal()), size);
}

TEST(catalog_journal, a_flipped_byte_in_a_middle_record_is_corruption) {
  journal_dir t;
  write_history(t.journal());
  const std::string whole = read_file(t.journal());
  const auto offsets = record_offsets(whole);
  ASSERT_GE(offsets.size(), 4u);
  // One flip in the payload, one in the CRC and one in the length of record 3.
  for (size_t at : {offsets[2] + 12, offsets[2] + 5, offsets[2] + 1, offsets[2]}) {
    SCOPED_TRACE("flip at byte " + std::to_string(at));
    std::string damaged = whole;
    damaged[at] ^= 0x08;
    write_file(t.journal(), damaged);

    catalog c;
    auto before = c.plan_push(model_id{"pre", "existing"}, snap("p1"), "", 1);
    for (const auto& ch : before) ASSERT_TRUE(c.apply(ch).is_ok());
    const std::string c_before = dump(c);
    auto o = open_journal(t.journal(), c);
    ASSERT_FALSE(o.is_ok());
    EXPECT_EQ(o.error().code(), status_code::corruption);
    EXPECT_NE(o.error().message().find("record 3"), std::string::npos) << o.error().message();
    EXPECT_EQ(read_file(t.journal()), damaged) << "acknowledged records are never dropped";
    EXPECT_EQ(dump(c), c_before) << "a failed open leaves the catalog as it was";
  }
}

TEST(catalog_journal, a_record_that_does_not_apply_is_corruption_naming_it) {
  journal_dir t;
  pb::CatalogRecord good;
  auto* add = good.add_changes();
  add->set_kind(pb::CatalogChange::ADD_SNAPSHOT);
  add->set_tenant("acme");
  add->set_model("bot");
  add->mutable_snapshot()->set_version(1);
  add->mutable_snapshot()->set_sha256("s1");
  pb::CatalogRecord bad;  // moves a label of a model that does not exist
  auto* move = bad.add_changes();
  move->set_kind(pb::CatalogChange::MOVE_LABEL);
  move->set_tenant("acme");
  move->set_model("ghost");
  move->set_label("production");
  move->set_action("promote");
  move->set_to(1);
  write_file(t.journal(), frame(good.SerializeAsString()) + frame(bad.SerializeAsString()));

  catalog c;
  auto o = open_journal(t.journal(), c);
  ASSERT_FALSE(o.is_ok());
  EXPECT_EQ(o.error().code(), status_code::corruption);
  EXPECT_NE(o.error().message().find("record 2"), std::string::npos) << o.error().message();
  EXPECT_NE(o.error().message().find("no model acme/ghost"), std::string::npos)
      << o.error().message();
  EXPECT_TRUE(c.models().empty()) << "nothing of a failed replay is kept";
}

TEST(catalog_journal, a_version_taken_twice_on_replay_is_corruption) {
  journal_dir t;
  pb::CatalogRecord rec;
  for (uint32_t v : {1u, 1u}) {
    auto* add = rec.add_changes();
    add->set_kind(pb::CatalogChange::ADD_SNAPSHOT);
    add->set_tenant("acme");
    add->set_model("bot");
    add->mutable_snapshot()->set_version(v);
  }
  write_file(t.journal(), frame(rec.SerializeAsString()));
  catalog c;
  auto o = open_journal(t.journal(), c);
  ASSERT_FALSE(o.is_ok());
  EXPECT_EQ(o.error().code(), status_code::corruption);
  EXPECT_NE(o.error().message().find("record 1"), std::string::npos) << o.error().message();
}

TEST(catalog_journal, a_checksummed_record_that_does_not_parse_is_corruption) {
  journal_dir t;
  catalog original = write_history(t.journal());
  {
    std::ofstream out(t.journal(), std::ios::binary | std::ios::app);
    out << frame(std::string("\xff\xff\xff\xff", 4));
  }
  catalog c;
  auto o = open_journal(t.journal(), c);
  ASSERT_FALSE(o.is_ok());
  EXPECT_EQ(o.error().code(), status_code::corruption);
  EXPECT_NE(o.error().message().find("record 9"), std::string::npos) << o.error().message();
}

TEST(catalog_journal, an_unknown_label_action_is_corruption) {
  journal_dir t;
  catalog c;
  auto changes = c.plan_push(bot, snap("s1"), "", 1);
  pb::CatalogRecord rec;
  for (const auto& ch : changes) {
    auto* pc = rec.add_changes();
    pc->set_tenant("acme");
    pc->set_model("bot");
    if (ch.what == catalog_change::kind::add_snapshot) {
      pc->set_kind(pb::CatalogChange::ADD_SNAPSHOT);
      pc->mutable_snapshot()->set_version(1);
    } else {
      pc->set_kind(pb::CatalogChange::MOVE_LABEL);
      pc->set_label("production");
      pc->set_action("teleport");
      pc->set_to(1);
    }
  }
  write_file(t.journal(), frame(rec.SerializeAsString()));
  auto o = open_journal(t.journal(), c);
  ASSERT_FALSE(o.is_ok());
  EXPECT_EQ(o.error().code(), status_code::corruption);
  EXPECT_NE(o.error().message().find("teleport"), std::string::npos) << o.error().message();
}

TEST(catalog_journal, an_unopenable_path_is_an_io_error) {
  journal_dir t;
  catalog c;
  auto o = open_journal(t.path() + "/missing-dir/catalog.journal", c);
  ASSERT_FALSE(o.is_ok());
  EXPECT_EQ(o.error().code(), status_code::io_error);
  EXPECT_NE(o.error().message().find("missing-dir"), std::string::npos) << o.error().message();
}

}  // namespace
}  // namespace shoal

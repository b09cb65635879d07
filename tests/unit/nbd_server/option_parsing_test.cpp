#include "nbd-server/option_parsing.h"

#include <gtest/gtest.h>

#include "tests/unit/nbd_server/raw_client.h"

namespace hydrate::nbd {
namespace {

using testing::be16;
using testing::be32;
using testing::bytes;
using testing::cat;

TEST(InfoRequest, ParsesNameAndItems) {
  InfoRequest r;
  auto error = parse_info_request(testing::info_payload("disk", {1, 3}), r);
  ASSERT_FALSE(error) << *error;
  EXPECT_EQ(r.export_name, "disk");
  EXPECT_EQ(r.items, (std::vector<uint16_t>{1, 3}));
}

TEST(InfoRequest, EmptyNameIsTheDefaultExport) {
  InfoRequest r;
  ASSERT_FALSE(parse_info_request(testing::info_payload(""), r));
  EXPECT_EQ(r.export_name, "");
  EXPECT_TRUE(r.items.empty());
}

TEST(InfoRequest, RejectsNameRunningPastPayload) {
  InfoRequest r;
  auto error = parse_info_request(cat({be32(100), bytes("abc"), be16(0)}), r);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("runs past the payload"), std::string::npos) << *error;
}

TEST(InfoRequest, RejectsTrailingBytes) {
  InfoRequest r;
  auto payload = cat({testing::info_payload("a", {1}), bytes("xx")});
  auto error = parse_info_request(payload, r);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("1 information requests need 2 bytes"), std::string::npos) << *error;
}

TEST(InfoRequest, RejectsMissingCountAndShortPayload) {
  InfoRequest r;
  EXPECT_TRUE(parse_info_request(cat({be32(1), bytes("a")}), r));
  EXPECT_TRUE(parse_info_request(bytes("ab"), r));
  EXPECT_TRUE(parse_info_request({}, r));
}

TEST(InfoRequest, RejectsNulAndOverlongNames) {
  InfoRequest r;
  std::string nul("a\0b", 3);
  EXPECT_TRUE(parse_info_request(testing::info_payload(nul), r));
  std::string huge(4097, 'x');
  auto error = parse_info_request(testing::info_payload(huge), r);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("4096"), std::string::npos) << *error;
  EXPECT_FALSE(parse_info_request(testing::info_payload(std::string(4096, 'x')), r));
}

std::vector<std::byte> meta_payload(const std::string& name, std::vector<std::string> queries) {
  auto out = cat({be32(static_cast<uint32_t>(name.size())), bytes(name),
                  be32(static_cast<uint32_t>(queries.size()))});
  for (auto& q : queries) {
    auto part = cat({be32(static_cast<uint32_t>(q.size())), bytes(q)});
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

TEST(MetaContextRequest, ParsesQueries) {
  MetaContextRequest r;
  auto error = parse_meta_context_request(meta_payload("e", {"base:allocation", "qemu:"}), r);
  ASSERT_FALSE(error) << *error;
  EXPECT_EQ(r.export_name, "e");
  EXPECT_EQ(r.queries, (std::vector<std::string>{"base:allocation", "qemu:"}));
}

TEST(MetaContextRequest, RejectsMalformedPayloads) {
  MetaContextRequest r;
  // More queries announced than the payload can hold.
  EXPECT_TRUE(parse_meta_context_request(cat({be32(0), be32(1000000)}), r));
  // A query length running past the end.
  EXPECT_TRUE(parse_meta_context_request(cat({be32(0), be32(1), be32(50), bytes("base:")}), r));
  // Trailing bytes after the last query.
  auto error =
      parse_meta_context_request(cat({meta_payload("", {"base:allocation"}), bytes("z")}), r);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("follow the last query"), std::string::npos) << *error;
  // Missing query count.
  EXPECT_TRUE(parse_meta_context_request(cat({be32(1), bytes("e")}), r));
}

TEST(MetaContextMatching, ListingWithoutQueriesListsEverything) {
  std::vector<std::string> available{"base:allocation", "hydrate:state", "qemu:dirty-bitmap:cbt"};
  std::string error;
  EXPECT_EQ(match_meta_contexts(available, {}, true, &error), (std::vector<size_t>{0, 1, 2}));
  EXPECT_TRUE(match_meta_contexts(available, {}, false, &error).empty());
}

TEST(MetaContextMatching, NamespaceQueriesListOnlyWhenListing) {
  std::vector<std::string> available{"base:allocation", "hydrate:state", "qemu:dirty-bitmap:cbt"};
  std::string error;
  EXPECT_EQ(match_meta_contexts(available, {"base:"}, true, &error), (std::vector<size_t>{0}));
  EXPECT_EQ(match_meta_contexts(available, {"qemu:dirty-bitmap:"}, true, &error),
            (std::vector<size_t>{2}));
  EXPECT_TRUE(match_meta_contexts(available, {"base:"}, false, &error).empty());
}

TEST(MetaContextMatching, ExactNamesUnknownNamespacesAndDuplicates) {
  std::vector<std::string> available{"base:allocation", "hydrate:state"};
  std::string error;
  EXPECT_EQ(match_meta_contexts(available,
                                {"hydrate:state", "x-unknown:thing", "base:allocation",
                                 "hydrate:state", "base:nonexistent"},
                                false, &error),
            (std::vector<size_t>{1, 0}));
  EXPECT_TRUE(error.empty());
}

TEST(MetaContextMatching, QueryWithoutNamespaceIsMalformed) {
  std::vector<std::string> available{"base:allocation"};
  std::string error;
  EXPECT_TRUE(match_meta_contexts(available, {"allocation"}, false, &error).empty());
  EXPECT_NE(error.find("no namespace"), std::string::npos) << error;
}

}  // namespace
}  // namespace hydrate::nbd

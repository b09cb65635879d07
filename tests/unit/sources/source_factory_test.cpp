#include "engine/sources/source_factory.h"

#include <gtest/gtest.h>

#include "engine/sources/file_source.h"
#include "engine/sources/nbd_source.h"
#include "engine/sources/nbdkit_source.h"
#include "tests/unit/sources/source_test_support.h"

namespace hydrate::test {
namespace {

class SourceFactory : public SourceTest {};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST_F(SourceFactory, BuildsEachKind) {
  auto nbd =
      make_source(SourceSpec::parse("nbd://backup.example.com/vm1"), threads_, test_options());
  EXPECT_NE(dynamic_cast<NbdSource*>(nbd.get()), nullptr);
  EXPECT_EQ(nbd->identity(), "nbd://backup.example.com/vm1");
  auto file = make_source(SourceSpec::parse("/srv/images/base.img"), threads_, test_options());
  EXPECT_NE(dynamic_cast<FileSource*>(file.get()), nullptr);
  EXPECT_EQ(file->identity(), "file:/srv/images/base.img");  // canonical once opened
  auto nbdkit = make_source(SourceSpec::nbdkit({"curl", "url=https://example.com/d.img"}), threads_,
                            test_options());
  EXPECT_NE(dynamic_cast<NbdkitSource*>(nbdkit.get()), nullptr);
  EXPECT_EQ(nbdkit->identity(), "nbdkit:curl url=https://example.com/d.img");
}

TEST_F(SourceFactory, BadSpecsAreRefusedWithTheirText) {
  const SourceOptions options = test_options();
  std::string e =
      error_of([&] { make_source(SourceSpec::parse("https://x/disk"), threads_, options); });
  EXPECT_NE(e.find("unsupported source URI scheme 'https'"), std::string::npos) << e;
  EXPECT_NE(e.find("https://x/disk"), std::string::npos) << e;
  e = error_of([&] { make_source(SourceSpec::uri("nbd://:10809/x"), threads_, options); });
  EXPECT_NE(e.find("nbd://:10809/x"), std::string::npos) << e;
  e = error_of([&] { make_source(SourceSpec::path(""), threads_, options); });
  EXPECT_NE(e.find("empty"), std::string::npos) << e;
  SourceOptions writable = options;
  writable.writable = true;
  e = error_of([&] { make_source(SourceSpec::path("/srv/a.img"), threads_, writable); });
  EXPECT_NE(e.find("/srv/a.img"), std::string::npos) << e;
}

TEST_F(SourceFactory, BadOptionsAreRefused) {
  const SourceSpec spec = SourceSpec::uri("nbd://h/x");
  SourceOptions o = test_options();
  o.connections = 0;
  EXPECT_NE(error_of([&] { make_source(spec, threads_, o); }).find("source_connections"),
            std::string::npos);
  o = test_options();
  o.source_timeout = std::chrono::milliseconds(0);
  EXPECT_NE(error_of([&] { make_source(spec, threads_, o); }).find("source_timeout"),
            std::string::npos);
  o = test_options();
  o.backoff.max = std::chrono::milliseconds(1);
  EXPECT_NE(error_of([&] { make_source(spec, threads_, o); }).find("backoff"), std::string::npos);
}

}  // namespace
}  // namespace hydrate::test

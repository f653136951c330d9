// The sampler: greedy and top-k=1 pick the argmax, draws are reproducible from the seed,
// top-p / min-p never leave their allowed set, the repetition penalty lowers a recent token,
// and plain temperature sampling follows the softmax.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "runtime/sampler.h"

using namespace lutra;

namespace {

// Only the stage under test switched on: no top-k, top-p, min-p or penalty.
SamplerParams plain(float temperature, uint64_t seed = 1) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.seed = seed;
  return p;
}

// Draws `n` tokens from fresh copies of `logits` (sample() may modify them).
std::vector<int32_t> draw(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int32_t> out;
  std::vector<float> l;
  for (int i = 0; i < n; ++i) {
    l = logits;
    out.push_back(s.sample(l.data()));
  }
  return out;
}

std::vector<float> random_logits(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

size_t argmax(const std::vector<float>& v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = i;
  return best;
}

}  // namespace

TEST_CASE("sampler at temperature 0 picks the argmax, the lowest id among ties") {
  Sampler s(6, plain(0.0f));
  std::vector<float> l = {1.0f, 5.0f, 3.0f, 5.0f, -2.0f, 5.0f};
  CHECK(s.sample(l.data()) == 1);
  l = {-3.0f, -1.0f, -1.0f, -7.0f, -2.0f, -9.0f};
  CHECK(s.sample(l.data()) == 1);
  for (uint32_t seed = 0; seed < 20; ++seed) {
    std::vector<float> r = random_logits(6, seed);
    std::vector<float> copy = r;
    CHECK(size_t(s.sample(copy.data())) == argmax(r));
  }
  // Negative temperature is greedy too.
  Sampler neg(3, plain(-1.0f));
  std::vector<float> m = {0.0f, 0.5f, 0.25f};
  CHECK(neg.sample(m.data()) == 1);
}

TEST_CASE("sampler with top_k 1 equals the argmax at any temperature") {
  for (float temp : {0.1f, 0.8f, 1.0f, 5.0f, 100.0f}) {
    CAPTURE(temp);
    SamplerParams p = plain(temp, 7);
    p.top_k = 1;
    Sampler s(100, p);
    for (uint32_t seed = 0; seed < 20; ++seed) {
      std::vector<float> l = random_logits(100, seed);
      std::vector<float> copy = l;
      CHECK(size_t(s.sample(copy.data())) == argmax(l));
    }
    // Ties: the lowest id, like greedy.
    std::vector<float> ties(100, 0.0f);
    ties[40] = ties[17] = ties[90] = 2.0f;
    for (int i = 0; i < 10; ++i) {
      std::vector<float> copy = ties;
      CHECK(s.sample(copy.data()) == 17);
    }
    // With the default top-p / min-p on as well.
    SamplerParams d;
    d.temperature = temp;
    d.top_k = 1;
    Sampler sd(100, d);
    std::vector<float> l = random_logits(100, 99);
    std::vector<float> copy = l;
    CHECK(size_t(sd.sample(copy.data())) == argmax(l));
  }
}

TEST_CASE("sampler draws are reproducible from the seed and differ between seeds") {
  const std::vector<float> flat(50, 0.0f);
  Sampler a(50, plain(1.0f, 1234)), b(50, plain(1.0f, 1234)), c(50, plain(1.0f, 1235));
  const std::vector<int32_t> da = draw(a, flat, 200), db = draw(b, flat, 200), dc = draw(c, flat, 200);
  CHECK(da == db);
  CHECK(da != dc);
  // Draws are spread over the vocabulary, not stuck.
  std::vector<int> seen(50, 0);
  for (int32_t t : da) {
    REQUIRE(t >= 0);
    REQUIRE(t < 50);
    seen[size_t(t)] = 1;
  }
  int distinct = 0;
  for (int x : seen) distinct += x;
  CHECK(distinct > 30);
  // reset() rewinds to the seed.
  a.reset();
  CHECK(draw(a, flat, 200) == da);
}

TEST_CASE("sampler top_p never picks a token outside the nucleus") {
  // probabilities 0.5, 0.3, 0.1, 0.05, 0.05 at temperature 1; ids shuffled so order is not id order
  const std::vector<int> order = {3, 0, 4, 1, 2};
  const std::vector<float> probs = {0.5f, 0.3f, 0.1f, 0.05f, 0.05f};
  std::vector<float> logits(5);
  for (size_t i = 0; i < 5; ++i) logits[size_t(order[i])] = std::log(probs[i]);

  struct Case {
    float top_p;
    size_t allowed;  // the first `allowed` of `order`
  };
  for (Case c : {Case{0.4f, 1}, Case{0.75f, 2}, Case{0.85f, 3}, Case{0.93f, 4}}) {
    CAPTURE(c.top_p);
    SamplerParams p = plain(1.0f, 11);
    p.top_p = c.top_p;
    Sampler s(5, p);
    std::vector<int> count(5, 0);
    for (int32_t t : draw(s, logits, 3000)) ++count[size_t(t)];
    for (size_t i = 0; i < 5; ++i) {
      CAPTURE(i);
      if (i < c.allowed)
        CHECK(count[size_t(order[i])] > 0);
      else
        CHECK(count[size_t(order[i])] == 0);
    }
  }
}

TEST_CASE("sampler min_p never picks a token below min_p times the top probability") {
  const std::vector<float> probs = {0.05f, 0.1f, 0.5f, 0.05f, 0.3f};  // top: id 2
  std::vector<float> logits(5);
  for (size_t i = 0; i < 5; ++i) logits[i] = std::log(probs[i]);
  struct Case {
    float min_p;
    std::vector<int> allowed;
  };
  for (const Case& c : {Case{0.7f, {2}}, Case{0.5f, {2, 4}}, Case{0.15f, {1, 2, 4}}}) {
    CAPTURE(c.min_p);
    SamplerParams p = plain(1.0f, 5);
    p.min_p = c.min_p;
    Sampler s(5, p);
    std::vector<int> count(5, 0);
    for (int32_t t : draw(s, logits, 3000)) ++count[size_t(t)];
    for (int i = 0; i < 5; ++i) {
      CAPTURE(i);
      bool allowed = std::find(c.allowed.begin(), c.allowed.end(), i) != c.allowed.end();
      if (allowed)
        CHECK(count[size_t(i)] > 0);
      else
        CHECK(count[size_t(i)] == 0);
    }
  }
}

TEST_CASE("sampler repetition penalty makes a penalized top token lose to the runner-up") {
  // Top token 0 at logit 3, runner-up 1 at 2: a penalty above 3/2 flips the greedy choice.
  const std::vector<float> logits = {3.0f, 2.0f, 0.5f, -1.0f};
  auto greedy_after = [&](float penalty, std::vector<int32_t> recent, int last_n = 64) {
    SamplerParams p = plain(0.0f);
    p.repeat_penalty = penalty;
    p.repeat_last_n = last_n;
    Sampler s(4, p);
    for (int32_t t : recent) s.accept(t);
    std::vector<float> l = logits;
    return s.sample(l.data());
  };
  CHECK(greedy_after(1.0f, {0}) == 0);
  CHECK(greedy_after(1.4f, {0}) == 0);  // 3/1.4 = 2.14 > 2
  CHECK(greedy_after(1.6f, {0}) == 1);  // 3/1.6 = 1.875 < 2
  CHECK(greedy_after(1.6f, {2, 3}) == 0);  // others penalized, not the top
  // Each token penalized once, however often it occurs in the window: 3/1.6 > 2/1.6.
  CHECK(greedy_after(1.6f, {0, 0, 0, 1}) == 0);
  // Only the last repeat_last_n tokens count.
  CHECK(greedy_after(1.6f, {0, 2, 3}, 2) == 0);
  CHECK(greedy_after(1.6f, {2, 0, 3}, 2) == 1);

  // Negative logits are multiplied: -1 * 2 = -2 < -1.5.
  {
    SamplerParams p = plain(0.0f);
    p.repeat_penalty = 2.0f;
    Sampler s(2, p);
    s.accept(0);
    std::vector<float> l = {-1.0f, -1.5f};
    CHECK(s.sample(l.data()) == 1);
  }
  // The sampler remembers what it picked: greedy on equal-ish logits alternates.
  {
    SamplerParams p = plain(0.0f);
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 1;
    Sampler s(2, p);
    std::vector<float> l = {1.2f, 1.0f};
    std::vector<int32_t> picks = draw(s, l, 4);
    CHECK(picks == std::vector<int32_t>{0, 1, 0, 1});
  }
}

TEST_CASE("sampler repetition penalty lowers a recent token's probability at temperature 1") {
  // Two tokens at equal logit 1; token 0 recently seen, penalty 2: p(0) = e^0.5 / (e^0.5 + e).
  const double expected = std::exp(0.5) / (std::exp(0.5) + std::exp(1.0));  // 0.3775
  int zeros = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    SamplerParams p = plain(1.0f, uint64_t(i) * 7919 + 1);
    p.repeat_penalty = 2.0f;
    Sampler s(2, p);
    s.accept(0);
    std::vector<float> l = {1.0f, 1.0f};
    zeros += s.sample(l.data()) == 0;
  }
  CHECK(std::fabs(double(zeros) / n - expected) < 0.03);
  CHECK(double(zeros) / n < 0.45);
}

TEST_CASE("sampler frequencies at temperature 1 match the softmax over 20000 draws") {
  const std::vector<float> logits = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, 1.5f};
  for (float temp : {1.0f, 2.0f}) {
    CAPTURE(temp);
    std::vector<double> p(logits.size());
    double sum = 0;
    for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp(double(logits[i]) / temp);
    for (double& x : p) x /= sum;

    Sampler s(logits.size(), plain(temp, 2024));
    const int n = 20000;
    std::vector<int> count(logits.size(), 0);
    for (int32_t t : draw(s, logits, n)) ++count[size_t(t)];
    for (size_t i = 0; i < p.size(); ++i) {
      CAPTURE(i);
      CHECK(std::fabs(double(count[i]) / n - p[i]) < 0.02);
    }
  }
}

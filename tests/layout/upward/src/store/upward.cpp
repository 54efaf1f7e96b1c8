// A fixture for ctest layout_refuses_upward_test, never compiled: a store file that includes a
// serving header, which tests/layout/check_layout.cmake must refuse.
#include "shoal/serving/api.hpp"

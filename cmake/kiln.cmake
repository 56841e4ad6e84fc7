# kiln_layer(NAME DEPS...) builds src/kiln/NAME into the static library kiln_NAME from
# every *.cc in the folder except tests and main.cc, and builds the folder's *_test.cc
# files into the test binary kiln_NAME_tests (registered with ctest).
# Adding a file to a layer is therefore just adding the file.
# If KILN_LAYER_TEST_PROPERTIES is set when kiln_layer is called, every test discovered in
# the layer's test binary gets those ctest properties (e.g. FIXTURES_REQUIRED postgres).
function(kiln_layer name)
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  if(tests)
    list(REMOVE_ITEM srcs ${tests})
  endif()
  list(FILTER srcs EXCLUDE REGEX "/main\\.cc$")
  add_library(kiln_${name} STATIC ${srcs})
  target_include_directories(kiln_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(kiln_${name} PRIVATE ${KILN_WARNINGS})
  target_link_libraries(kiln_${name} PUBLIC ${ARGN})
  set_property(GLOBAL APPEND PROPERTY KILN_LAYERS kiln_${name})
  if(tests AND KILN_BUILD_TESTS)
    add_executable(kiln_${name}_tests ${tests})
    target_compile_options(kiln_${name}_tests PRIVATE ${KILN_WARNINGS})
    target_compile_definitions(kiln_${name}_tests PRIVATE
      KILN_SOURCE_DIR="${PROJECT_SOURCE_DIR}" KILN_BINARY_DIR="${PROJECT_BINARY_DIR}")
    target_link_libraries(kiln_${name}_tests PRIVATE kiln_${name} kiln_testing
                          GTest::gtest GTest::gmock GTest::gtest_main)
    if(DEFINED KILN_LAYER_TEST_PROPERTIES)
      gtest_discover_tests(kiln_${name}_tests DISCOVERY_TIMEOUT 60
                           PROPERTIES ${KILN_LAYER_TEST_PROPERTIES})
    else()
      gtest_discover_tests(kiln_${name}_tests DISCOVERY_TIMEOUT 60)
    endif()
  endif()
endfunction()

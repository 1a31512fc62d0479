# bfnviz, the SDL2 desktop app: included at the end of CMakeLists.txt.
# Builds the app's code (src/viz) as an internal static library `viz`, the
# `bfnviz` executable on top of it, and one headless test program per
# tests/app_*.c (they drive the app with synthetic SDL events, no display).
pkg_check_modules(SDL2 REQUIRED IMPORTED_TARGET sdl2)
pkg_check_modules(SDL2_TTF REQUIRED IMPORTED_TARGET SDL2_ttf)

file(GLOB VIZ_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/viz/*.c)
list(REMOVE_ITEM VIZ_SRC ${CMAKE_SOURCE_DIR}/src/viz/main.c)
add_library(viz STATIC ${VIZ_SRC})
target_include_directories(viz PUBLIC ${CMAKE_SOURCE_DIR}/src/viz)
target_link_libraries(viz PUBLIC bfn PkgConfig::SDL2 PkgConfig::SDL2_TTF)

add_executable(bfnviz ${CMAKE_SOURCE_DIR}/src/viz/main.c)
target_link_libraries(bfnviz PRIVATE viz)

file(GLOB VIZ_TEST_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/app_*.c)
foreach(src ${VIZ_TEST_SRC})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/check.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE viz)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT 600
    ENVIRONMENT "SDL_VIDEODRIVER=dummy;SDL_AUDIODRIVER=dummy")
endforeach()
